//! An nginx of the test's own in front of `cutover mock`: its config and every path it
//! writes (pid, error log, temp files) in the scratch directory, in the foreground as one
//! process (`daemon off; master_process off;`, so no `user` switch even as root), each
//! `location` a `proxy_pass` unbuffered as a streaming relay is, telling in response
//! headers what nginx saw as the apps in `upstreams/` do.

use std::net::SocketAddr;
use std::process::Command;

use super::server::Server;
use super::{GATEWAY_KEY, UPSTREAM_KEY};
use crate::binary::Scratch;

pub const NGINX_HINT: &str = "install nginx (`apt-get install nginx`; .ci/deps/upstreams.sh)";

/// `nginx` on PATH, else Debian's `/usr/sbin/nginx` (not on a non-root PATH).
fn binary() -> &'static str {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .find(|program| Command::new(program).arg("-v").output().is_ok())
        .unwrap_or_else(|| panic!("nginx is not installed: {NGINX_HINT}"))
}

/// Starts nginx with `servers` (`server { … }` blocks) and waits until it listens on
/// every address of `ports`.
pub async fn start(scratch: &Scratch, servers: &str, ports: &[SocketAddr]) -> Server {
    let prefix = scratch.path().join("nginx");
    std::fs::create_dir_all(prefix.join("logs")).unwrap();
    let temp = |name: &str| format!("{name}_temp_path {}/{name};", prefix.display());
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n\
         error_log {prefix}/logs/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  {}\n  {}\n  {}\n  {}\n  {}\n{}\n{servers}\n}}\n",
        temp("client_body"),
        temp("proxy"),
        temp("fastcgi"),
        temp("uwsgi"),
        temp("scgi"),
        seen_maps(),
        prefix = prefix.display(),
    );
    let file = prefix.join("nginx.conf");
    std::fs::write(&file, config).unwrap();
    let mut command = Command::new(binary());
    // `-e` (1.19.5+): even before reading the config, log nowhere outside the prefix.
    command.arg("-p").arg(&prefix).arg("-c").arg(&file).arg("-e").arg(prefix.join("logs/error.log"));
    let mut server = Server::spawn(scratch, "nginx", &mut command, NGINX_HINT);
    for addr in ports {
        server = server.ready(*addr, NGINX_HINT).await;
    }
    server
}

/// What nginx saw, in the terms of the apps' headers: the key by what `Authorization`
/// held, the request target as sent, and whether any client-only header arrived.
fn seen_maps() -> String {
    format!(
        "  map $http_authorization $seen_key {{\n\
         \x20   \"\" none;\n\
         \x20   \"Bearer {UPSTREAM_KEY}\" upstream;\n\
         \x20   \"~{GATEWAY_KEY}\" gateway;\n\
         \x20   default other;\n\
         \x20 }}\n\
         \x20 map $request $seen_target {{\n\
         \x20   \"~^[^ ]+ (?<target>[^ ]+)\" $target;\n\
         \x20   default \"\";\n\
         \x20 }}\n\
         \x20 map \"$http_cookie$http_openai_organization$http_openai_project$http_x_api_key$http_x_goog_api_key\" \
         $seen_client_only {{\n\
         \x20   \"\" \"[]\";\n\
         \x20   default \"[some]\";\n\
         \x20 }}\n"
    )
}

/// A `location` proxying `/{prefix}v1/` to the mock at `mock`, reporting what it saw and
/// setting a cookie of its own.
pub fn proxy_location(prefix: &str, mock: SocketAddr) -> String {
    format!(
        "    location /{prefix}v1/ {{\n\
         \x20     proxy_pass http://{mock}/v1/;\n\
         \x20     proxy_http_version 1.1;\n\
         \x20     proxy_set_header Connection \"\";\n\
         \x20     proxy_buffering off;\n\
         \x20     add_header x-seen-host $http_host always;\n\
         \x20     add_header x-seen-target $seen_target always;\n\
         \x20     add_header x-seen-key $seen_key always;\n\
         \x20     add_header x-seen-client-only $seen_client_only always;\n\
         \x20     add_header x-upstream-proto $server_protocol always;\n\
         \x20     add_header x-upstream-connection $connection always;\n\
         \x20     add_header x-upstream-server nginx/$nginx_version always;\n\
         \x20     add_header set-cookie \"upstream-session=1; Path=/\" always;\n\
         \x20   }}\n"
    )
}
