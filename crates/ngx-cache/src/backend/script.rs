//! The Lua scripts the backends run. Redis 7.0 has no `SET IFEQ`, so the
//! compare-and-set of a checked fill is a script. Every key a script
//! touches is passed in `KEYS`, and a lease key shares its data key's hash
//! slot, so the scripts also run on a cluster.

/// The checked fill. KEYS: data, lease. ARGV: token, value, px, `1` if the
/// key held `ARGV[5]` when the lease was taken (`0` if it was absent), the
/// bytes it held. Writes only if the lease still holds the token and the key
/// still holds what was observed; returns 1 when written, 0 when refused.
pub(super) const FILL: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local current = redis.call('GET', KEYS[1])
if ARGV[4] == '1' then
  if current ~= ARGV[5] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[2])
return 1";

/// The versioned write. KEYS: data, version. ARGV: value, px, version as
/// 20 decimal digits (zero-padded, so string order is number order for
/// every `u64`). Writes the value and the version only if the version key
/// holds no version or a lower one; returns 1 when written, 0 when refused.
pub(super) const VERSIONED_SET: &str = r"
local held = redis.call('GET', KEYS[2])
if held and held >= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])
return 1";

/// Deletes a lease if it still holds the token. KEYS: lease. ARGV: token.
pub(super) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0";
