//! Route identity: a `RouteId` names one route of the configuration, and a `PerRoute<T>`
//! holds one `T` for each route, built from the configuration's own table. Every
//! per-route table of the request path, the metrics and the controller is a `PerRoute`
//! indexed by `RouteId`, so no table can be indexed with something that is not a route,
//! nor built with a different number of routes than the configuration has.

use std::ops::{Index, IndexMut};

/// One route of the configuration: its position in `Config::routes`, which only this
/// module hands out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RouteId(u32);

impl RouteId {
    /// The route's position, for log fields and error paths (`routes[2]`).
    pub fn position(self) -> usize {
        self.0 as usize
    }
}

/// One value per route of the configuration, in the configuration's order.
#[derive(Debug, Clone)]
pub struct PerRoute<T> {
    items: Box<[T]>,
}

impl<T> PerRoute<T> {
    /// Only the configuration's own route table is built from a plain list; every other
    /// table is derived from it with `map` or `try_map`.
    pub(crate) fn from_routes(items: Vec<T>) -> PerRoute<T> {
        PerRoute { items: items.into_boxed_slice() }
    }

    /// A table with one `U` per route, made from each route's `T`.
    pub fn map<U>(&self, mut make: impl FnMut(RouteId, &T) -> U) -> PerRoute<U> {
        PerRoute { items: self.iter().map(|(id, item)| make(id, item)).collect() }
    }

    /// As `map`, stopping at the first error.
    pub fn try_map<U, E>(&self, mut make: impl FnMut(RouteId, &T) -> Result<U, E>) -> Result<PerRoute<U>, E> {
        let items = self.iter().map(|(id, item)| make(id, item)).collect::<Result<Vec<U>, E>>()?;
        Ok(PerRoute { items: items.into_boxed_slice() })
    }

    /// Pairs this table with `values`, one per route in route order, as a list produced by
    /// walking this table (e.g. rows loaded for each route name) comes back. `None` when
    /// the counts differ.
    pub fn zip_ordered<U>(&self, values: Vec<U>) -> Option<PerRoute<U>> {
        (values.len() == self.items.len()).then(|| PerRoute { items: values.into_boxed_slice() })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (RouteId, &T)> {
        self.items.iter().enumerate().map(|(position, item)| (RouteId(position as u32), item))
    }

    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (RouteId, &mut T)> {
        self.items.iter_mut().enumerate().map(|(position, item)| (RouteId(position as u32), item))
    }

    pub fn values(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    /// The first route whose value satisfies `predicate`.
    pub fn find(&self, predicate: impl FnMut(&T) -> bool) -> Option<RouteId> {
        self.items.iter().position(predicate).map(|position| RouteId(position as u32))
    }

    /// The first route, if the table has any.
    pub fn first_id(&self) -> Option<RouteId> {
        (!self.items.is_empty()).then_some(RouteId(0))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<T> Index<RouteId> for PerRoute<T> {
    type Output = T;

    fn index(&self, id: RouteId) -> &T {
        &self.items[id.position()]
    }
}

impl<T> IndexMut<RouteId> for PerRoute<T> {
    fn index_mut(&mut self, id: RouteId) -> &mut T {
        &mut self.items[id.position()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_tables_share_the_routes_identities() {
        let routes = PerRoute::from_routes(vec!["chat", "embeddings", "default"]);
        let lengths = routes.map(|_, name| name.len());
        let embeddings = routes.find(|name| *name == "embeddings");
        assert_eq!(embeddings.map(|id| lengths[id]), Some(10));
        assert_eq!(routes.first_id().map(|id| routes[id]), Some("chat"));
        let ids: Vec<usize> = routes.iter().map(|(id, _)| id.position()).collect();
        assert_eq!(ids, [0, 1, 2]);
    }

    #[test]
    fn an_ordered_list_of_another_length_is_refused() {
        let routes = PerRoute::from_routes(vec!["a", "b"]);
        assert!(routes.zip_ordered(vec![1]).is_none());
        assert_eq!(routes.zip_ordered(vec![1, 2]).map(|table| table[RouteId(1)]), Some(2));
    }
}
