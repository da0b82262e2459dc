/*
** Lua binding of RocksDB (Debian's librocksdb, its C API rocksdb/c.h): the
** store the RocksDB state backend keeps working state in, on local disk,
** larger than memory. A database has named column families (one per
** operator's state); keys and values are byte strings, ordered by bytes,
** so a key-group prefix makes a key-group range one contiguous range.
** Built only where librocksdb is found (WEIR_HAVE_ROCKSDB); elsewhere
** core.rocksdb_open is absent.
*/
#include <stdlib.h>
#include <string.h>

#include "lua_aux.h"

#ifdef WEIR_HAVE_ROCKSDB
#include <rocksdb/c.h>

#define ROCKSDB_MT "weir.rocksdb"
#define MAX_FAMILIES 64

typedef struct {
  rocksdb_t* db;
  rocksdb_options_t* options;
  rocksdb_readoptions_t* read;
  rocksdb_writeoptions_t* write;
  int n;                                   /* column families open */
  char* names[MAX_FAMILIES];
  rocksdb_column_family_handle_t* cfs[MAX_FAMILIES];
} ldb_t;

/* Pushes nil and RocksDB's message err (freed); returns 2. */
static int push_failure(lua_State* L, char* err) {
  lua_pushnil(L);
  lua_pushstring(L, err ? err : "rocksdb failed");
  free(err);
  return 2;
}

/* Pushes true, or nil and err's message (freed) when err is set; returns
** how many values it pushed. */
static int push_done(lua_State* L, char* err) {
  if (err != NULL) return push_failure(L, err);
  lua_pushboolean(L, 1);
  return 1;
}

static void close_db(ldb_t* d) {
  int i;
  if (d->db == NULL) return;
  for (i = 0; i < d->n; i++) {
    rocksdb_column_family_handle_destroy(d->cfs[i]);
    free(d->names[i]);
  }
  d->n = 0;
  rocksdb_close(d->db);
  d->db = NULL;
  rocksdb_readoptions_destroy(d->read);
  rocksdb_writeoptions_destroy(d->write);
  rocksdb_options_destroy(d->options);
}

static ldb_t* check_db(lua_State* L) {
  ldb_t* d = luaL_checkudata(L, 1, ROCKSDB_MT);
  if (d->db == NULL) luaL_error(L, "rocksdb: the database is closed");
  return d;
}

/* The column family of argument idx (an index from db:column_family). */
static rocksdb_column_family_handle_t* check_cf(lua_State* L, ldb_t* d,
                                                int idx) {
  int i = (int) luaL_checkinteger(L, idx);
  if (i < 1 || i > d->n) luaL_error(L, "rocksdb: no column family %d", i);
  return d->cfs[i - 1];
}

/* Options for working state that weir's checkpoints make durable (as
** Flink's RocksDB backend sets them): no write-ahead log (a lost database
** is rebuilt from the last checkpoint), and no write stalls while
** compaction catches up with the level-0 file each checkpoint flushes
** (stalls would hold records up instead); Bloom filters; warnings only in
** RocksDB's LOG. */
static void set_working_state_options(rocksdb_options_t* options) {
  /* A Bloom filter per SST file (10 bits a key): looking up a key that is
  ** not there (every new key) skips the files instead of reading them. */
  rocksdb_block_based_table_options_t* table =
      rocksdb_block_based_options_create();
  rocksdb_block_based_options_set_filter_policy(
      table, rocksdb_filterpolicy_create_bloom(10));
  rocksdb_options_set_block_based_table_factory(options, table);
  rocksdb_block_based_options_destroy(table);
  rocksdb_options_set_max_background_jobs(options, 4);
  rocksdb_options_set_max_write_buffer_number(options, 4);
  /* Memtables of 32 MiB, at most 64 MiB of them over all column families
  ** of the database (RocksDB's write buffer manager; its default, 64 MiB
  ** for each of up to 4 per family, put 256 MiB per operator on top of
  ** the cache of decoded entries). */
  rocksdb_options_set_write_buffer_size(options, (size_t) 32 << 20);
  rocksdb_options_set_db_write_buffer_size(options, (size_t) 64 << 20);
  rocksdb_options_set_level0_slowdown_writes_trigger(options, 256);
  rocksdb_options_set_level0_stop_writes_trigger(options, 512);
  rocksdb_options_set_soft_pending_compaction_bytes_limit(options, 0);
  rocksdb_options_set_hard_pending_compaction_bytes_limit(options, 0);
  rocksdb_options_set_info_log_level(options, 2);  /* WARN_LEVEL */
  rocksdb_options_set_keep_log_file_num(options, 2);
}

/* core.rocksdb_open(path) -> db | nil, message
** Opens (or creates) the database in directory path with every column
** family it holds, with the options above: writes go to no write-ahead
** log, so what is not flushed (a checkpoint flushes) is lost on close. */
static int l_rocksdb_open(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  ldb_t* d = lua_newuserdata(L, sizeof(*d));
  char* err = NULL;
  char** names;
  size_t n = 0, i;
  const rocksdb_options_t* cf_options[MAX_FAMILIES];
  memset(d, 0, sizeof(*d));
  luaL_getmetatable(L, ROCKSDB_MT);
  lua_setmetatable(L, -2);
  d->options = rocksdb_options_create();
  rocksdb_options_set_create_if_missing(d->options, 1);
  rocksdb_options_set_create_missing_column_families(d->options, 1);
  set_working_state_options(d->options);
  names = rocksdb_list_column_families(d->options, path, &n, &err);
  if (err != NULL) {     /* a new database: only the default family */
    free(err);
    err = NULL;
    names = NULL;
    n = 0;
  }
  if (n > MAX_FAMILIES) {
    rocksdb_list_column_families_destroy(names, n);
    rocksdb_options_destroy(d->options);
    return luaL_error(L, "rocksdb: %s has more than %d column families",
                      path, MAX_FAMILIES);
  }
  if (n == 0) {
    d->names[0] = strdup("default");
    n = 1;
  } else {
    for (i = 0; i < n; i++) d->names[i] = strdup(names[i]);
    rocksdb_list_column_families_destroy(names, n);
  }
  for (i = 0; i < n; i++) cf_options[i] = d->options;
  d->db = rocksdb_open_column_families(d->options, path, (int) n,
                                       (const char* const*) d->names,
                                       cf_options, d->cfs, &err);
  if (err != NULL) {
    for (i = 0; i < n; i++) free(d->names[i]);
    rocksdb_options_destroy(d->options);
    d->db = NULL;
    return push_failure(L, err);
  }
  d->n = (int) n;
  d->read = rocksdb_readoptions_create();
  d->write = rocksdb_writeoptions_create();
  rocksdb_writeoptions_disable_WAL(d->write, 1);
  return 1;
}

/* db:column_family(name) -> index | nil, message: the family named name,
** created if missing. */
static int l_column_family(lua_State* L) {
  ldb_t* d = check_db(L);
  const char* name = luaL_checkstring(L, 2);
  char* err = NULL;
  int i;
  for (i = 0; i < d->n; i++) {
    if (strcmp(d->names[i], name) == 0) {
      lua_pushinteger(L, i + 1);
      return 1;
    }
  }
  if (d->n == MAX_FAMILIES) {
    return luaL_error(L, "rocksdb: more than %d column families",
                      MAX_FAMILIES);
  }
  d->cfs[d->n] = rocksdb_create_column_family(d->db, d->options, name, &err);
  if (err != NULL) return push_failure(L, err);
  d->names[d->n] = strdup(name);
  d->n++;
  lua_pushinteger(L, d->n);
  return 1;
}

/* db:put(cf, key, value) -> true | nil, message */
static int l_put(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_column_family_handle_t* cf = check_cf(L, d, 2);
  size_t klen, vlen;
  const char* k = luaL_checklstring(L, 3, &klen);
  const char* v = luaL_checklstring(L, 4, &vlen);
  char* err = NULL;
  rocksdb_put_cf(d->db, d->write, cf, k, klen, v, vlen, &err);
  return push_done(L, err);
}

/* db:get(cf, key) -> value | nil (absent) | nil, message */
static int l_get(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_column_family_handle_t* cf = check_cf(L, d, 2);
  size_t klen, vlen;
  const char* k = luaL_checklstring(L, 3, &klen);
  char* err = NULL;
  char* v = rocksdb_get_cf(d->db, d->read, cf, k, klen, &vlen, &err);
  if (err != NULL) return push_failure(L, err);
  if (v == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushlstring(L, v, vlen);
  rocksdb_free(v);
  return 1;
}

/* db:delete(cf, key) -> true | nil, message */
static int l_delete(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_column_family_handle_t* cf = check_cf(L, d, 2);
  size_t klen;
  const char* k = luaL_checklstring(L, 3, &klen);
  char* err = NULL;
  rocksdb_delete_cf(d->db, d->write, cf, k, klen, &err);
  return push_done(L, err);
}

/* db:delete_range(cf, from, to) -> true | nil, message: deletes the keys
** in [from, to) with one range tombstone. */
static int l_delete_range(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_column_family_handle_t* cf = check_cf(L, d, 2);
  size_t flen, tlen;
  const char* from = luaL_checklstring(L, 3, &flen);
  const char* to = luaL_checklstring(L, 4, &tlen);
  char* err = NULL;
  rocksdb_delete_range_cf(d->db, d->write, cf, from, flen, to, tlen, &err);
  return push_done(L, err);
}

/* db:write(ops) -> true | nil, message
** Writes ops = { cf1, key1, value1, cf2, key2, false, ... } atomically (a
** write batch): a value of false deletes the key. */
static int l_write(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_writebatch_t* batch;
  char* err = NULL;
  int n, i;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (int) lua_objlen(L, 2);
  if (n % 3 != 0) return luaL_error(L, "rocksdb: write expects triples");
  batch = rocksdb_writebatch_create();
  for (i = 1; i <= n; i += 3) {
    rocksdb_column_family_handle_t* cf;
    size_t klen, vlen;
    const char* k;
    int top = lua_gettop(L);
    lua_rawgeti(L, 2, i);
    lua_rawgeti(L, 2, i + 1);
    lua_rawgeti(L, 2, i + 2);
    if (!lua_isnumber(L, top + 1) || lua_type(L, top + 2) != LUA_TSTRING ||
        (lua_type(L, top + 3) != LUA_TSTRING &&
         !(lua_isboolean(L, top + 3) && !lua_toboolean(L, top + 3)))) {
      rocksdb_writebatch_destroy(batch);
      return luaL_error(L, "rocksdb: write: triple %d is not { cf, key, "
                        "value or false }", i / 3 + 1);
    }
    cf = check_cf(L, d, top + 1);
    k = lua_tolstring(L, top + 2, &klen);
    if (lua_type(L, top + 3) == LUA_TSTRING) {
      const char* v = lua_tolstring(L, top + 3, &vlen);
      rocksdb_writebatch_put_cf(batch, cf, k, klen, v, vlen);
    } else {
      rocksdb_writebatch_delete_cf(batch, cf, k, klen);
    }
    lua_settop(L, top);
  }
  rocksdb_write(d->db, d->write, batch, &err);
  rocksdb_writebatch_destroy(batch);
  return push_done(L, err);
}

/* db:scan(cf, from, to [, limit]) -> { key1, value1, key2, value2, ... }
** The keys in [from, to) in byte order (to nil: to the end), at most
** limit pairs (default: all). */
static int l_scan(lua_State* L) {
  ldb_t* d = check_db(L);
  rocksdb_column_family_handle_t* cf = check_cf(L, d, 2);
  size_t flen, tlen = 0;
  const char* from = luaL_checklstring(L, 3, &flen);
  const char* to = luaL_optlstring(L, 4, NULL, &tlen);
  lua_Integer limit = luaL_optinteger(L, 5, -1);
  rocksdb_iterator_t* it = rocksdb_create_iterator_cf(d->db, d->read, cf);
  int out = 0;
  char* err = NULL;
  lua_newtable(L);
  for (rocksdb_iter_seek(it, from, flen);
       rocksdb_iter_valid(it) && limit != 0; rocksdb_iter_next(it)) {
    size_t klen, vlen, m;
    const char* k = rocksdb_iter_key(it, &klen);
    const char* v;
    if (to != NULL) {
      m = klen < tlen ? klen : tlen;
      int c = memcmp(k, to, m);
      if (c > 0 || (c == 0 && klen >= tlen)) break;
    }
    v = rocksdb_iter_value(it, &vlen);
    lua_pushlstring(L, k, klen);
    lua_rawseti(L, -2, ++out);
    lua_pushlstring(L, v, vlen);
    lua_rawseti(L, -2, ++out);
    if (limit > 0) limit--;
  }
  rocksdb_iter_get_error(it, &err);
  rocksdb_iter_destroy(it);
  if (err != NULL) return push_failure(L, err);
  return 1;
}

/* db:checkpoint(dir) -> true | nil, message
** A RocksDB checkpoint into dir (which must not exist): the database's
** files as hard links where dir is on the same file system, so it costs
** no copy; a consistent view of every column family. */
static int l_checkpoint(lua_State* L) {
  ldb_t* d = check_db(L);
  const char* dir = luaL_checkstring(L, 2);
  char* err = NULL;
  rocksdb_checkpoint_t* cp = rocksdb_checkpoint_object_create(d->db, &err);
  if (err != NULL) return push_failure(L, err);
  rocksdb_checkpoint_create(cp, dir, 0, &err);
  rocksdb_checkpoint_object_destroy(cp);
  return push_done(L, err);
}

/* db:close(): closes the database (also when collected). */
static int l_close(lua_State* L) {
  close_db(luaL_checkudata(L, 1, ROCKSDB_MT));
  return 0;
}

/* core.rocksdb_destroy(path) -> true | nil, message: removes the database
** in path. */
static int l_rocksdb_destroy(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  rocksdb_options_t* options = rocksdb_options_create();
  char* err = NULL;
  rocksdb_destroy_db(options, path, &err);
  rocksdb_options_destroy(options);
  return push_done(L, err);
}

static const luaL_Reg db_methods[] = {
  { "column_family", l_column_family }, { "put", l_put }, { "get", l_get },
  { "delete", l_delete }, { "delete_range", l_delete_range },
  { "write", l_write }, { "scan", l_scan },
  { "checkpoint", l_checkpoint }, { "close", l_close }, { NULL, NULL }
};

void wr__lua_open_rocksdb(lua_State* L) {
  wr__lua_new_gc_class(L, ROCKSDB_MT, db_methods, l_close);
  lua_pushcfunction(L, l_rocksdb_open);
  lua_setfield(L, -2, "rocksdb_open");
  lua_pushcfunction(L, l_rocksdb_destroy);
  lua_setfield(L, -2, "rocksdb_destroy");
}
#else
void wr__lua_open_rocksdb(lua_State* L) {
  (void) L;
}
#endif
