/*
 * services/guestlink/scripts.c - the Lua scripts of guestlink.
 *
 * Every script touches the keys of one hash tag: a link's scripts the
 * keys link:{<id>}*, the index scripts one link:{ix:...} key.  Times come
 * from the caller (ms since the epoch), so every replica judges expiry by
 * the same rule and the scripts stay deterministic.
 *
 * A link's state moves only here:
 *
 *   active --wrong password reaching the limit--> locked --unlock--> active
 *     |  \--deleted--> deleted                      \--deleted--> deleted
 *     expired and used up are not states but facts of exp, max and uses.
 *
 * Password attempts: "fail" counts wrong passwords for the life of the
 * link; an attempt under way is a member of link:{<id>}:res with its
 * lease end.  An attempt is refused while fail + attempts under way >=
 * the limit, so concurrent guesses can never exceed it.  A right password
 * removes its member (the attempt is refunded); a wrong one removes it
 * and adds one to fail: the wrong password that makes fail reach the limit
 * locks the link, exactly once.  A member whose lease ran out (its
 * guestlink died between the two scripts) counts as a wrong password.
 *
 * A lock's notice (the creator's mail and the audit entry) is sent by
 * guestlink once the script that locked has answered, and confirmed by
 * deleting the field "lockmail", which the locking script set to a lease
 * end.  Should that answer be lost (a Redis timeout, guestlink dying), the
 * first redemption after the lease finds the field, takes a new lease and
 * gets {4} instead of {0}: the notice goes out late, never not at all
 * (abandoned 0 then: the attempts it counted were answered before).
 *
 * Answers of redeem and settle (guestlink.h enum gl_outcome):
 *   {0}                                        gone: not usable, whatever why
 *   {1, view, ttl, used, uses, <info>[, <note>]}
 *                                              viewable: used is 1 when this
 *                                              call took a use (and made the
 *                                              session KEYS[3]), 0 for a
 *                                              session that was still valid
 *                                              (then without <note>)
 *   {2}                                        password required (no use)
 *   {3, password hash, dob, abandoned, attempts, <info>}
 *                                              attempt reserved (redeem);
 *                                              dob "1": the birth date;
 *                                              abandoned: attempts whose
 *                                              lease ran out, counted now
 *   {4, attempts, <info>, abandoned, view, wlname}
 *                                              locked by this attempt;
 *                                              abandoned: as for 3 (redeem,
 *                                              when they made the lock),
 *                                              else 0; view: the sealed
 *                                              view, for the notice's study;
 *                                              wlname: an upload link's
 *                                              worklist name (nil if none),
 *                                              for its notice
 *   {5, attempts left, attempts, <info>}       wrong password
 *   {6}                                        busy: every attempt left
 *                                              is being checked (reserved)
 * <info> is study, wl, notify, by_email, email: what the audit entry and
 * the notifications need, so that no second round trip is made for them.
 * <note> is mail, held, since, window: whether this use's view notice is
 * mailed (0 no, 1 yes, 2 yes and the last of its window), and for a mail
 * that opens a window the views held back in the one before (and when
 * that began), and when this window began.  A link mails at most
 * view-max notices per view-window (ARGV; 0: none counted, an upload
 * link's): the fields vn_at, vn_n and vn_held.  Times are the callers'
 * (replicas' clocks differ by little); a window begun more than a minute
 * in the caller's future (a clock that jumped) is begun again, so that a
 * bad clock cannot silence a link for long.
 */
#include "services/guestlink/guestlink.h"

/* Shared by redeem and settle.  KEYS: link, res, new session;
 * ARGV[1] now ms, ARGV[2] session ttl ms.  use() takes a use and makes
 * the session, given the view and the info already read; the session
 * ends with the link (exp), so its expires_at and cookie do too; then
 * counts the view's notice (vw window ms, vm notices in it: <note>). */
#define LUA_COMMON                                                             \
	"local function info()\n"                                              \
	"  return redis.call('HMGET', KEYS[1], 'view', 'study', 'wl', "        \
	"'notify', 'by_email', 'email')\n"                                     \
	"end\n"                                                                \
	"local function note(now, i, vw, vm)\n"                                \
	"  if i[4] ~= '1' or vm <= 0 then return 0, 0, 0, 0 end\n"             \
	"  local v = redis.call('HMGET', KEYS[1], 'vn_at', 'vn_n', "           \
	"'vn_held')\n"                                                         \
	"  local at = tonumber(v[1]) or 0\n"                                   \
	"  if now - at >= vw or at > now + 60000 then\n"                       \
	"    redis.call('HSET', KEYS[1], 'vn_at', now, 'vn_n', 1, "            \
	"'vn_held', 0)\n"                                                      \
	"    local m = 1\n"                                                    \
	"    if vm == 1 then m = 2 end\n"                                      \
	"    return m, tonumber(v[3]) or 0, at, now\n"                         \
	"  end\n"                                                              \
	"  if (tonumber(v[2]) or 0) >= vm then\n"                              \
	"    redis.call('HINCRBY', KEYS[1], 'vn_held', 1)\n"                   \
	"    return 0, 0, 0, at\n"                                             \
	"  end\n"                                                              \
	"  local n = redis.call('HINCRBY', KEYS[1], 'vn_n', 1)\n"              \
	"  local m = 1\n"                                                      \
	"  if n >= vm then m = 2 end\n"                                        \
	"  return m, 0, 0, at\n"                                               \
	"end\n"                                                                \
	"local function use(exp, now, i, vw, vm)\n"                            \
	"  local uses = redis.call('HINCRBY', KEYS[1], 'uses', 1)\n"           \
	"  local ttl = math.min(tonumber(ARGV[2]), exp - now)\n"               \
	"  redis.call('SET', KEYS[3], '1', 'PX', string.format('%d', ttl))\n"  \
	"  local m, held, since, win = note(now, i, vw, vm)\n"                 \
	"  return {1, i[1], ttl, 1, uses, i[2], i[3], i[4], i[5], i[6], m, "   \
	"held, since, win}\n"                                                  \
	"end\n"                                                                \
	"local function wlname()\n"                                            \
	"  return redis.call('HGET', KEYS[1], 'wlname')\n"                     \
	"end\n"                                                                \
	"local now = tonumber(ARGV[1])\n"

/* KEYS: link  ARGV: purge ms, field, value, ...
 * -> 1 stored, 0 the id is taken (draw another token). */
ss_script gl_script_store = {
    .name = "guestlink_store",
    .src = "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
           "redis.call('HSET', KEYS[1], unpack(ARGV, 2))\n"
           "redis.call('PEXPIREAT', KEYS[1], ARGV[1])\n"
           "return 1\n",
};

/* KEYS: index  ARGV: purge ms, id -> 1 added, 0 it was there.  The
 * index lives as long as its longest-lived link. */
ss_script gl_script_index_add = {
    .name = "guestlink_index_add",
    .src = "local n = redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
           "local t = redis.call('PEXPIRETIME', KEYS[1])\n"
           "if t < tonumber(ARGV[1]) then\n"
           "  redis.call('PEXPIREAT', KEYS[1], ARGV[1])\n"
           "end\n"
           "return n\n",
};

/* KEYS: index  ARGV: now ms, limit -> ids, latest purge first.  Ids whose
 * keys are gone are dropped first. */
ss_script gl_script_index_read = {
    .name = "guestlink_index_read",
    .src = "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])\n"
           "return redis.call('ZRANGE', KEYS[1], '+inf', '-inf', "
           "'BYSCORE', 'REV', 'LIMIT', 0, tonumber(ARGV[2]))\n",
};

/* KEYS: link, res, new session, presented session (or any key of the
 * slot)  ARGV: now, session ttl, token hash, "open"|"pw", "1" when a
 * session was presented, reservation id, lease end ms, view-notice
 * window ms, view-notice max (0: not counted).
 * The whole redemption without a password: one call. */
ss_script gl_script_redeem = {
    .name = "guestlink_redeem",
    .src = LUA_COMMON
    "local f = redis.call('HMGET', KEYS[1], 'th', 'state', 'exp', 'max', "
    "'uses', 'maxpw', 'fail', 'purge', 'view', 'study', 'wl', 'notify', "
    "'by_email', 'email')\n"
    "if not f[1] or f[1] ~= ARGV[3] then return {0} end\n"
    "if f[2] == 'deleted' or tonumber(f[3]) <= now then return {0} end\n"
    "local i = {f[9], f[10], f[11], f[12], f[13], f[14]}\n"
    "if ARGV[5] == '1' then\n"
    "  local t = redis.call('PTTL', KEYS[4])\n"
    "  if t > 0 then\n"
    "    return {1, i[1], t, 0, tonumber(f[5]), i[2], i[3], i[4], i[5], "
    "i[6]}\n"
    "  end\n"
    "end\n"
    "if f[2] == 'locked' then\n"
    "  local m = redis.call('HGET', KEYS[1], 'lockmail')\n"
    "  if m and tonumber(m) <= now then\n"
    "    redis.call('HSET', KEYS[1], 'lockmail', ARGV[7])\n"
    "    return {4, tonumber(f[7]), i[2], i[3], i[4], i[5], i[6], 0, "
    "i[1], wlname()}\n"
    "  end\n"
    "  return {0}\n"
    "end\n"
    "local max = tonumber(f[4])\n"
    "if max > 0 and tonumber(f[5]) >= max then return {0} end\n"
    "local maxpw = tonumber(f[6])\n"
    "if maxpw > 0 then\n"
    "  if ARGV[4] ~= 'pw' then return {2} end\n"
    "  local fail = tonumber(f[7])\n"
    "  local n = redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])\n"
    "  if n > 0 then\n"
    "    fail = redis.call('HINCRBY', KEYS[1], 'fail', n)\n"
    "    if fail >= maxpw then\n"
    "      redis.call('HSET', KEYS[1], 'state', 'locked', 'lockmail', "
    "ARGV[7])\n"
    "      return {4, fail, i[2], i[3], i[4], i[5], i[6], n, i[1], "
    "wlname()}\n"
    "    end\n"
    "  end\n"
    "  if fail + redis.call('ZCARD', KEYS[2]) >= maxpw then return {6} end\n"
    "  redis.call('ZADD', KEYS[2], ARGV[7], ARGV[6])\n"
    "  redis.call('PEXPIREAT', KEYS[2], f[8])\n"
    "  local p = redis.call('HMGET', KEYS[1], 'pw', 'dob')\n"
    "  return {3, p[1], p[2], n, fail, i[2], i[3], i[4], i[5], i[6]}\n"
    "end\n"
    "return use(tonumber(f[3]), now, i, tonumber(ARGV[8]), "
    "tonumber(ARGV[9]))\n",
};

/* KEYS: link, res, new session  ARGV: now, session ttl, reservation id,
 * "1" right password | "0" wrong, lease end ms (of the lock's notice),
 * view-notice window ms, view-notice max. */
ss_script gl_script_settle = {
    .name = "guestlink_settle",
    .src = LUA_COMMON
    "if redis.call('ZREM', KEYS[2], ARGV[3]) == 0 then return {0} end\n"
    "local f = redis.call('HMGET', KEYS[1], 'state', 'exp', 'max', "
    "'uses', 'maxpw')\n"
    "if not f[1] or f[1] == 'deleted' or tonumber(f[2]) <= now then\n"
    "  return {0}\n"
    "end\n"
    "if ARGV[4] == '1' then\n"
    "  if f[1] == 'locked' then return {0} end\n"
    "  local max = tonumber(f[3])\n"
    "  if max > 0 and tonumber(f[4]) >= max then return {0} end\n"
    "  return use(tonumber(f[2]), now, info(), tonumber(ARGV[6]), "
    "tonumber(ARGV[7]))\n"
    "end\n"
    "local maxpw = tonumber(f[5])\n"
    "local fail = redis.call('HINCRBY', KEYS[1], 'fail', 1)\n"
    "local i = info()\n"
    "if fail >= maxpw and f[1] ~= 'locked' then\n"
    "  redis.call('HSET', KEYS[1], 'state', 'locked', 'lockmail', ARGV[5])\n"
    "  return {4, fail, i[2], i[3], i[4], i[5], i[6], 0, i[1], wlname()}\n"
    "end\n"
    "local left = maxpw - fail\n"
    "if left < 0 then left = 0 end\n"
    "return {5, left, fail, i[2], i[3], i[4], i[5], i[6]}\n",
};

/* KEYS: link, session  ARGV: now -> {0} or {1, view, ttl}.  A session
 * outlives a link that got locked or used up after it was made (it is the
 * use already granted), not one that was deleted or expired.  An upload
 * link's session opens no study view (tokens do not cross kinds). */
ss_script gl_script_session = {
    .name = "guestlink_session",
    .src = "local f = redis.call('HMGET', KEYS[1], 'state', 'exp', 'kind')\n"
           "if not f[1] or f[1] == 'deleted' or f[3] == 'upload' or "
           "tonumber(f[2]) <= tonumber(ARGV[1]) then\n"
           "  return {0}\n"
           "end\n"
           "local t = redis.call('PTTL', KEYS[2])\n"
           "if t <= 0 then return {0} end\n"
           "return {1, redis.call('HGET', KEYS[1], 'view'), t}\n",
};

/* KEYS: link, res  ARGV: now, grace ms, user -> 0 no such link, 1
 * deleted, 2 deleted already.  The secrets go at once; the rest stays for
 * the grace period so the list can show the link as deleted. */
ss_script gl_script_delete = {
    .name = "guestlink_delete",
    .src = "local f = redis.call('HMGET', KEYS[1], 'state', 'purge')\n"
           "if not f[1] then return 0 end\n"
           "if f[1] == 'deleted' then return 2 end\n"
           "local p = math.min(tonumber(f[2]), "
           "tonumber(ARGV[1]) + tonumber(ARGV[2]))\n"
           "p = string.format('%d', p)\n"
           "redis.call('HSET', KEYS[1], 'state', 'deleted', 'ended', "
           "ARGV[1], 'deleted_by', ARGV[3], 'purge', p)\n"
           "redis.call('HDEL', KEYS[1], 'tok', 'view', 'pw')\n"
           "redis.call('PEXPIREAT', KEYS[1], p)\n"
           "redis.call('DEL', KEYS[2])\n"
           "return 1\n",
};

/* KEYS: link, res  ARGV: now, field names...  -> {0} no such link, or
 * {1 unlocked | 3 unchanged, {values of the fields}}.  Only a locked
 * link that has not otherwise ended is unlocked. */
ss_script gl_script_unlock = {
    .name = "guestlink_unlock",
    .src = "local f = redis.call('HMGET', KEYS[1], 'state', 'exp', 'max', "
           "'uses')\n"
           "if not f[1] then return {0} end\n"
           "local code = 3\n"
           "local max = tonumber(f[3])\n"
           "if f[1] == 'locked' and tonumber(f[2]) > tonumber(ARGV[1]) and\n"
           "    not (max > 0 and tonumber(f[4]) >= max) then\n"
           "  redis.call('HSET', KEYS[1], 'state', 'active', 'fail', 0)\n"
           "  redis.call('HDEL', KEYS[1], 'lockmail')\n"
           "  redis.call('DEL', KEYS[2])\n"
           "  code = 1\n"
           "end\n"
           "return {code, redis.call('HMGET', KEYS[1], unpack(ARGV, 2))}\n",
};
