/**
 * The two scripts a paid job runs: one before its request, one after its image is recorded. Each
 * does in one round trip what separate calls to the claims, the ledger, the limiter and the batch
 * state did, with the same rules (and the same Lua functions for the shared parts).
 */
import type { LuaScript } from '../redis/scripts.js';

/**
 * KEYS: claim, sent mark, the batch's done hash, the job's stash, ledger, then the limiter's grants,
 * lockout and free slots.
 * ARGV: owner, claim ttl (ms), job id, the job's own file, '1' to pass over the done record,
 * micro-credits, sent mark ttl (s), then rateSlot's now, count, span, gap, member, idle ttl.
 * Result, with nothing changed unless it says so:
 * - {'done', file}: a worker recorded saving the job's image as `file` (not its own file name);
 * - {'stashed'}: its paid bytes wait to be written;
 * - {'held', pttl}: another owner is sending it;
 * - {'budget', outcome, budget, committed}: over the budget; the claim is dropped again;
 * - {outcome, slot status, at, now}: claimed ('claimed', or 'orphan' when a previous sender died with
 *   its request out: its reservation becomes possibly billed), credits reserved, sent mark set (to the owner), and
 *   a rate slot booked (rateSlot's result).
 * A sender records the job done (or stashes its bytes) before it releases its claim, so a claim
 * taken after that release always sees it. Run twice by the same owner (a client that resends a
 * command whose reply was lost to a reconnect), the second run reserves nothing more: the owner's
 * claim and sent mark show the first went through; only a new rate slot is booked.
 */
export const BEGIN: LuaScript = {
  name: 'nsJobBegin',
  numberOfKeys: 8,
  uses: ['nowMs', 'rateSlot', 'ledgerReserve', 'ledgerSettle'],
  lua: `
if ARGV[5] ~= '1' then
  local done = redis.call('HGET', KEYS[3], ARGV[3])
  if done and done ~= ARGV[4] then return {'done', done} end
end
if redis.call('EXISTS', KEYS[4]) == 1 then return {'stashed'} end
local outcome = 'claimed'
if redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  if redis.call('DEL', KEYS[2]) == 1 then
    -- The previous sender's reservation becomes what its request was: possibly billed.
    outcome = 'orphan'
    ledgerSettle(KEYS[5], ARGV[6], 'maybe_billed')
  end
elseif redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'held', redis.call('PTTL', KEYS[1])}
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  local reserved = ledgerReserve(KEYS[5], ARGV[6])
  if reserved[1] == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
    return {'budget', outcome, reserved[2], reserved[3]}
  end
  redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[7])
end
local slot = rateSlot(KEYS[6], KEYS[7], KEYS[8], nowMs(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]),
  tonumber(ARGV[11]), ARGV[12], tonumber(ARGV[13]), 'reserve')
return {outcome, slot[1], slot[2], slot[3]}
`,
};

/**
 * KEYS: ledger, claim, sent mark, then the batch's states, counts, index and done hash.
 * ARGV: micro-credits, mode, owner, batch, job id, state, file.
 * mode 'paid': this owner's request was answered: book it billed and drop its claim and sent mark,
 * once — the owner's sent mark is what is booked, so a second run (a resent command) books nothing.
 * A sent mark that is another's, or none, means another owner took the lapsed claim over and turned
 * this request's reservation into possibly billed: nothing is left to book. A sent mark of '1' is one set before marks
 * named their owner: it is this owner's when the claim is.
 * mode 'reused': the image was found on disk. A claim another owner still holds means its sender
 * may be alive and about to book it, or dead with its claim not yet lapsed: nothing is done and the
 * result is {'held', ms left on the claim} (the job waits and comes back). With no claim, a sent mark
 * means its sender died after the answer and before this step: book it billed (the image proves it)
 * and drop the mark.
 * Then records the job's state and file (batchSetStates). Result: 1.
 */
export const FINISH: LuaScript = {
  name: 'nsJobFinish',
  numberOfKeys: 7,
  uses: ['nowMs', 'ledgerSettle', 'settleSent', 'batchSetStates'],
  lua: `
if ARGV[2] == 'paid' then
  settleSent(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[3], 'billed')
elseif ARGV[2] == 'reused' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= ARGV[3] then return {'held', redis.call('PTTL', KEYS[2])} end
  if redis.call('DEL', KEYS[3]) == 1 then ledgerSettle(KEYS[1], ARGV[1], 'billed') end
  if holder then redis.call('DEL', KEYS[2]) end
end
batchSetStates(KEYS[4], KEYS[5], KEYS[6], KEYS[7], ARGV[4], ARGV, 5)
return 1
`,
};

/**
 * KEYS: ledger, claim, sent mark. ARGV: micro-credits, owner, outcome ('billed', 'maybe_billed' or
 * 'unbilled').
 * A request whose record did not complete: answered (its bytes wait in the stash), or not (a timeout
 * that may have been billed, a refusal before it left). Books it as what it was and drops the owner's
 * claim and sent mark, once (settleSent). Result: 1.
 */
export const SETTLE_SENT: LuaScript = {
  name: 'nsJobSettleSent',
  numberOfKeys: 3,
  uses: ['ledgerSettle', 'settleSent'],
  lua: `
settleSent(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3])
return 1
`,
};
