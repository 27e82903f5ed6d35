"""Lua for the Redis vector store: a document's replacement (and compaction) is one atomic script.

Keys of a namespace (one hash tag, so a cluster keeps them on one slot): `matrix` (float32 rows,
contiguous), `labels` (one `doc#chunk` per row, '' for a removed row), `chunks` (label -> chunk JSON),
`docs` (doc id -> JSON list of rows), `meta` (model, dim, epoch, version, garbage).
"""

from __future__ import annotations

#: Dead rows tolerated before a write compacts the matrix: past this and past the live row count.
COMPACT_MIN_GARBAGE = 256

# KEYS: matrix labels chunks docs meta
# ARGV: doc_id model dim n vectors(n*dim float32) chunk_json_1..n compact_min_garbage epoch
UPSERT = """
local doc_id, model, dim, n, blob = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local width = 4 * dim
local current = redis.call('HMGET', KEYS[5], 'model', 'dim')
if current[1] and (current[1] ~= model or tonumber(current[2]) ~= dim) then
  return redis.error_reply('VECTOR_SPACE ' .. current[1] .. ' ' .. current[2])
end
if not current[1] then
  if n == 0 then return {0, 0, 0} end
  -- A new epoch: a namespace deleted and created again must not match a reader's cached version.
  redis.call('HSET', KEYS[5], 'model', model, 'dim', dim, 'epoch', ARGV[7 + n])
end
local removed = 0
local old = redis.call('HGET', KEYS[4], doc_id)
if old then
  for _, row in ipairs(cjson.decode(old)) do
    local label = redis.call('LINDEX', KEYS[2], row)
    if label and label ~= '' then
      redis.call('LSET', KEYS[2], row, '')
      redis.call('HDEL', KEYS[3], label)
      removed = removed + 1
    end
  end
  redis.call('HDEL', KEYS[4], doc_id)
end
if n > 0 then
  local base = redis.call('STRLEN', KEYS[1]) / width
  redis.call('APPEND', KEYS[1], blob)
  local rows = {}
  for i = 0, n - 1 do
    local label = doc_id .. '#' .. i
    redis.call('RPUSH', KEYS[2], label)
    redis.call('HSET', KEYS[3], label, ARGV[6 + i])
    rows[#rows + 1] = base + i
  end
  redis.call('HSET', KEYS[4], doc_id, cjson.encode(rows))
end
local garbage = redis.call('HINCRBY', KEYS[5], 'garbage', removed)
local version = redis.call('HINCRBY', KEYS[5], 'version', 1)
if garbage > tonumber(ARGV[6 + n]) and garbage > redis.call('HLEN', KEYS[3]) then
  local labels = redis.call('LRANGE', KEYS[2], 0, -1)
  local parts, live, docs = {}, {}, {}
  for i, label in ipairs(labels) do
    if label ~= '' then
      parts[#parts + 1] = redis.call('GETRANGE', KEYS[1], (i - 1) * width, i * width - 1)
      live[#live + 1] = label
      local doc = string.match(label, '^(.*)#%d+$')
      docs[doc] = docs[doc] or {}
      table.insert(docs[doc], #live - 1)
    end
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
  if #live > 0 then
    redis.call('SET', KEYS[1], table.concat(parts))
    for start = 1, #live, 1000 do
      redis.call('RPUSH', KEYS[2], unpack(live, start, math.min(start + 999, #live)))
    end
    for doc, rows in pairs(docs) do
      redis.call('HSET', KEYS[4], doc, cjson.encode(rows))
    end
  end
  redis.call('HSET', KEYS[5], 'garbage', 0)
end
return {n, removed, version}
"""
