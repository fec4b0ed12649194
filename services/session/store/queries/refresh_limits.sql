-- name: HitRefreshLimit :one
-- HitRefreshLimit counts one call against a key and returns the calls of
-- its current window and when that window started. A window that started
-- at or before stale is over: the call starts a new one. The count stops
-- at ceiling (the limit plus one), so calls the limit refuses are not
-- counted. Concurrent calls on one key serialise on its row, so none is
-- lost.
INSERT INTO refresh_limits AS l (scope, key, window_start, hits)
VALUES (@scope, @key, @now::timestamptz, 1)
ON CONFLICT (scope, key) DO UPDATE SET
    window_start = CASE WHEN l.window_start <= @stale::timestamptz THEN @now::timestamptz ELSE l.window_start END,
    hits         = CASE WHEN l.window_start <= @stale::timestamptz THEN 1 ELSE LEAST(l.hits + 1, @ceiling::integer) END
RETURNING hits, window_start;

-- name: DeleteStaleRefreshLimits :execrows
-- DeleteStaleRefreshLimits removes the counters of windows that are over:
-- they started at or before stale.
DELETE FROM refresh_limits
WHERE window_start <= @stale::timestamptz;
