-- The shadow share an operator set at run time (`POST /admin/rollouts/{route}/shadow`),
-- over the configuration's; NULL: the configuration's.
ALTER TABLE rollout_state ADD COLUMN shadow_share double precision
    CHECK (shadow_share IS NULL OR (shadow_share >= 0 AND shadow_share <= 1));
