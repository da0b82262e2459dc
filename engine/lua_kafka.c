/*
** Lua binding of librdkafka (Debian's librdkafka-dev) for the Kafka source
** and sink (weir.kafka): a consumer that reads assigned partitions from
** given offsets (positions live in weir's checkpoints, not in the broker,
** as in Flink's Kafka source) and wakes the loop when messages arrive
** (librdkafka's queue io-event on a pipe, watched by a uv_poll); a
** producer with transactions; and librdkafka's mock cluster (real Kafka
** protocol on loopback, for the specs). Calls that wait on the broker
** (metadata, offsets, transactions) block for at most their timeout.
** Built only where librdkafka is found (WEIR_HAVE_RDKAFKA); elsewhere
** core.kafka_consumer is absent.
*/
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "lua_aux.h"

#ifdef WEIR_HAVE_RDKAFKA
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define CONSUMER_MT "weir.kafka_consumer"
#define PRODUCER_MT "weir.kafka_producer"
#define MOCK_MT "weir.kafka_mock"
#define MAX_BATCH 4096

typedef struct {
  rd_kafka_t* rk;
  rd_kafka_queue_t* queue;
  int pipe_fds[2];
  uv_poll_t* poll;   /* watches pipe_fds[0]; freed on close */
  int ready_ref;     /* fn() when messages arrived */
} lconsumer_t;

typedef struct {
  rd_kafka_t* rk;
  int failed;        /* a delivery failed since the last check */
  char error[256];
} lproducer_t;

typedef struct {
  rd_kafka_t* rk;
  rd_kafka_mock_cluster_t* cluster;
} lmock_t;

static int push_fail(lua_State* L, const char* message) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  return 2;
}

/* Pushes nil and error's message (destroyed); returns 2, or pushes true
** and returns 1 when error is NULL. */
static int push_error(lua_State* L, rd_kafka_error_t* error) {
  if (error == NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, rd_kafka_error_string(error));
  lua_pushboolean(L, rd_kafka_error_txn_requires_abort(error));
  rd_kafka_error_destroy(error);
  return 3;
}

/* A configuration from the string-to-string table at idx, or NULL with
** the message in err. */
static rd_kafka_conf_t* make_conf(lua_State* L, int idx, char* err,
                                  size_t errlen) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const char* k = lua_tostring(L, -2);
    const char* v = lua_tostring(L, -1);
    if (k == NULL || v == NULL ||
        rd_kafka_conf_set(conf, k, v, err, errlen) != RD_KAFKA_CONF_OK) {
      if (k == NULL || v == NULL)
        snprintf(err, errlen, "properties are strings");
      rd_kafka_conf_destroy(conf);
      lua_pop(L, 2);
      return NULL;
    }
    lua_pop(L, 1);
  }
  return conf;
}

/* -- Consumer ------------------------------------------------------------ */

static int l_consumer_close(lua_State* L);

static lconsumer_t* check_consumer(lua_State* L) {
  lconsumer_t* c = luaL_checkudata(L, 1, CONSUMER_MT);
  if (c->rk == NULL) luaL_error(L, "kafka: the consumer is closed");
  return c;
}

static void on_pipe(uv_poll_t* handle, int status, int events) {
  lconsumer_t* c = handle->data;
  char buf[64];
  (void) status;
  (void) events;
  while (read(c->pipe_fds[0], buf, sizeof(buf)) > 0) {}
  if (c->ready_ref != LUA_NOREF) wr__lua_callback(c->ready_ref, 0);
}

/* core.kafka_consumer(properties, on_ready) -> consumer | nil, message
** A consumer with librdkafka properties (strings; bootstrap.servers at
** least; group.id "weir" unless given); offsets are never committed to
** the broker. on_ready() is called
** from the loop when messages (or errors) wait to be polled. */
static int l_kafka_consumer(lua_State* L) {
  char err[512];
  rd_kafka_conf_t* conf = make_conf(L, 1, err, sizeof(err));
  lconsumer_t* c;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (conf == NULL) return push_fail(L, err);
  rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
  rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", NULL, 0);
  lua_getfield(L, 1, "group.id");
  if (lua_isnil(L, -1) &&
      rd_kafka_conf_set(conf, "group.id", "weir", NULL, 0) != RD_KAFKA_CONF_OK) {
    rd_kafka_conf_destroy(conf);
    return push_fail(L, "kafka: cannot set group.id");
  }
  lua_pop(L, 1);
  c = lua_newuserdata(L, sizeof(*c));
  memset(c, 0, sizeof(*c));
  c->ready_ref = LUA_NOREF;
  c->pipe_fds[0] = c->pipe_fds[1] = -1;
  luaL_getmetatable(L, CONSUMER_MT);
  lua_setmetatable(L, -2);
  c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
  if (c->rk == NULL) {  /* the configuration is still ours */
    rd_kafka_conf_destroy(conf);
    return push_fail(L, err);
  }
  rd_kafka_poll_set_consumer(c->rk);
  c->queue = rd_kafka_queue_get_consumer(c->rk);
  if (pipe(c->pipe_fds) != 0) {
    c->pipe_fds[0] = c->pipe_fds[1] = -1;
    l_consumer_close(L);
    return push_fail(L, "kafka: no pipe for the consumer's queue");
  }
  fcntl(c->pipe_fds[0], F_SETFL, O_NONBLOCK);
  fcntl(c->pipe_fds[1], F_SETFL, O_NONBLOCK);
  rd_kafka_queue_io_event_enable(c->queue, c->pipe_fds[1], "1", 1);
  c->poll = malloc(sizeof(*c->poll));
  if (c->poll == NULL ||
      uv_poll_init(wr__lua_loop(), c->poll, c->pipe_fds[0]) != 0) {
    free(c->poll);
    c->poll = NULL;
    l_consumer_close(L);
    return push_fail(L, "kafka: cannot watch the consumer's queue");
  }
  c->poll->data = c;
  uv_poll_start(c->poll, UV_READABLE, on_pipe);
  lua_pushvalue(L, 2);
  c->ready_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 1;
}

/* consumer:partitions(topic, timeout_ms) -> { partition ids } | nil, msg
** Asks the cluster which partitions topic has (blocks up to timeout_ms). */
static int l_partitions(lua_State* L) {
  lconsumer_t* c = check_consumer(L);
  const char* name = luaL_checkstring(L, 2);
  int timeout = (int) luaL_checkinteger(L, 3);
  rd_kafka_topic_t* topic = rd_kafka_topic_new(c->rk, name, NULL);
  const struct rd_kafka_metadata* md = NULL;
  rd_kafka_resp_err_t e;
  int i, j;
  if (topic == NULL) return push_fail(L, "kafka: bad topic name");
  e = rd_kafka_metadata(c->rk, 0, topic, &md, timeout);
  rd_kafka_topic_destroy(topic);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  for (i = 0; i < md->topic_cnt; i++) {
    if (md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      lua_pushnil(L);
      lua_pushstring(L, rd_kafka_err2str(md->topics[i].err));
      rd_kafka_metadata_destroy(md);
      return 2;
    }
    lua_createtable(L, md->topics[i].partition_cnt, 0);
    for (j = 0; j < md->topics[i].partition_cnt; j++) {
      lua_pushinteger(L, md->topics[i].partitions[j].id);
      lua_rawseti(L, -2, j + 1);
    }
    rd_kafka_metadata_destroy(md);
    return 1;
  }
  rd_kafka_metadata_destroy(md);
  return push_fail(L, "kafka: no such topic");
}

/* consumer:watermarks(topic, partition, timeout_ms) -> low, high | nil,
** message: the partition's first offset and the offset after its last
** message (blocks up to timeout_ms). */
static int l_watermarks(lua_State* L) {
  lconsumer_t* c = check_consumer(L);
  int64_t low, high;
  rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
      c->rk, luaL_checkstring(L, 2), (int32_t) luaL_checkinteger(L, 3), &low,
      &high, (int) luaL_checkinteger(L, 4));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  lua_pushnumber(L, (lua_Number) low);
  lua_pushnumber(L, (lua_Number) high);
  return 2;
}

/* consumer:assign({ { topic, partition, offset }, ... }) -> true | nil, msg
** Reads exactly these partitions, each from its offset (the next message
** to read; -2 the first present). Replaces any earlier assignment. */
static int l_assign(lua_State* L) {
  lconsumer_t* c = check_consumer(L);
  int n, i;
  rd_kafka_topic_partition_list_t* list;
  rd_kafka_resp_err_t e;
  luaL_checktype(L, 2, LUA_TTABLE);
  n = (int) lua_objlen(L, 2);
  list = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
  for (i = 1; i <= n; i++) {
    rd_kafka_topic_partition_t* tp;
    lua_rawgeti(L, 2, i);
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    lua_rawgeti(L, -3, 3);
    tp = rd_kafka_topic_partition_list_add(list, luaL_checkstring(L, -3),
                                           (int32_t) luaL_checkinteger(L, -2));
    tp->offset = (int64_t) luaL_checknumber(L, -1);
    lua_pop(L, 4);
  }
  e = rd_kafka_assign(c->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  lua_pushboolean(L, 1);
  return 1;
}

/* consumer:poll(max) -> { { topic, partition, offset, key, value,
** timestamp }, ... } | nil, message: up to max messages that wait, without
** blocking (key/value false when absent; timestamp in ms, false when
** none). A message that is an error (a partition gone) returns nil and its
** message; the end of a partition is not an error and not returned. */
static int l_poll(lua_State* L) {
  lconsumer_t* c = check_consumer(L);
  int max = (int) luaL_optinteger(L, 2, 1024);
  rd_kafka_message_t* msgs[MAX_BATCH];
  ssize_t n, i;
  int out = 0, failed = 0;
  char failure[512];
  if (max < 1) max = 1;
  if (max > MAX_BATCH) max = MAX_BATCH;
  n = rd_kafka_consume_batch_queue(c->queue, 0, msgs, (size_t) max);
  if (n < 0) return push_fail(L, "kafka: cannot poll the consumer");
  lua_createtable(L, (int) n, 0);
  for (i = 0; i < n; i++) {
    rd_kafka_message_t* m = msgs[i];
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF && !failed) {
        failed = 1;
        snprintf(failure, sizeof(failure), "%s", rd_kafka_message_errstr(m));
      }
    } else if (!failed) {
      rd_kafka_timestamp_type_t tstype;
      int64_t ts = rd_kafka_message_timestamp(m, &tstype);
      lua_createtable(L, 0, 6);
      lua_pushstring(L, rd_kafka_topic_name(m->rkt));
      lua_setfield(L, -2, "topic");
      lua_pushinteger(L, m->partition);
      lua_setfield(L, -2, "partition");
      lua_pushnumber(L, (lua_Number) m->offset);
      lua_setfield(L, -2, "offset");
      if (m->key) lua_pushlstring(L, m->key, m->key_len);
      else lua_pushboolean(L, 0);
      lua_setfield(L, -2, "key");
      if (m->payload) lua_pushlstring(L, m->payload, m->len);
      else lua_pushboolean(L, 0);
      lua_setfield(L, -2, "value");
      if (ts >= 0) lua_pushnumber(L, (lua_Number) ts);
      else lua_pushboolean(L, 0);
      lua_setfield(L, -2, "timestamp");
      lua_rawseti(L, -2, ++out);
    }
    rd_kafka_message_destroy(m);
  }
  if (failed) return push_fail(L, failure);
  return 1;
}

/* consumer:committed(topic, partition, timeout_ms) -> offset | false |
** nil, message: the offset the consumer's group (its group.id) has
** committed for the partition, or false when it has none (blocks up to
** timeout_ms). */
static int l_committed(lua_State* L) {
  lconsumer_t* c = check_consumer(L);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(
      list, luaL_checkstring(L, 2), (int32_t) luaL_checkinteger(L, 3));
  rd_kafka_resp_err_t e = rd_kafka_committed(c->rk, list,
                                             (int) luaL_checkinteger(L, 4));
  if (e == RD_KAFKA_RESP_ERR_NO_ERROR) e = tp->err;
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_topic_partition_list_destroy(list);
    return push_fail(L, rd_kafka_err2str(e));
  }
  if (tp->offset >= 0) lua_pushnumber(L, (lua_Number) tp->offset);
  else lua_pushboolean(L, 0);
  rd_kafka_topic_partition_list_destroy(list);
  return 1;
}

static void close_poll(uv_handle_t* h) { free(h); }

/* consumer:close(): stops reading and frees the consumer. Safe to call
** more than once. */
static int l_consumer_close(lua_State* L) {
  lconsumer_t* c = luaL_checkudata(L, 1, CONSUMER_MT);
  if (c->rk == NULL) return 0;
  if (c->queue == NULL) {  /* set-up failed before the queue */
    rd_kafka_destroy(c->rk);
    c->rk = NULL;
    return 0;
  }
  if (c->poll != NULL) {
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t*) c->poll, close_poll);
    c->poll = NULL;
  }
  rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
  rd_kafka_queue_destroy(c->queue);
  rd_kafka_consumer_close(c->rk);
  rd_kafka_destroy(c->rk);
  c->rk = NULL;
  if (c->pipe_fds[0] >= 0) close(c->pipe_fds[0]);
  if (c->pipe_fds[1] >= 0) close(c->pipe_fds[1]);
  luaL_unref(L, LUA_REGISTRYINDEX, c->ready_ref);
  c->ready_ref = LUA_NOREF;
  return 0;
}

/* -- Producer ------------------------------------------------------------ */

static lproducer_t* check_producer(lua_State* L) {
  lproducer_t* p = luaL_checkudata(L, 1, PRODUCER_MT);
  if (p->rk == NULL) luaL_error(L, "kafka: the producer is closed");
  return p;
}

static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m,
                        void* opaque) {
  lproducer_t* p = opaque;
  (void) rk;
  if (m->err && !p->failed) {
    p->failed = 1;
    snprintf(p->error, sizeof(p->error), "%s", rd_kafka_err2str(m->err));
  }
}

/* core.kafka_producer(properties) -> producer | nil, message
** A producer with librdkafka properties (strings: bootstrap.servers, and
** transactional.id for transactions). */
static int l_kafka_producer(lua_State* L) {
  char err[512];
  rd_kafka_conf_t* conf = make_conf(L, 1, err, sizeof(err));
  lproducer_t* p;
  if (conf == NULL) return push_fail(L, err);
  p = lua_newuserdata(L, sizeof(*p));
  memset(p, 0, sizeof(*p));
  luaL_getmetatable(L, PRODUCER_MT);
  lua_setmetatable(L, -2);
  rd_kafka_conf_set_opaque(conf, p);
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (p->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    return push_fail(L, err);
  }
  return 1;
}

/* producer:produce(topic, key, value [, partition]) -> true | nil, msg
** Queues a message (key may be nil; partition by the key's hash unless
** given). Deliveries are reported by producer:flush. */
static int l_produce(lua_State* L) {
  lproducer_t* p = check_producer(L);
  size_t klen = 0, vlen = 0;
  const char* topic = luaL_checkstring(L, 2);
  const char* key = lua_isnoneornil(L, 3) ? NULL : luaL_checklstring(L, 3, &klen);
  const char* value = lua_isnoneornil(L, 4) ? NULL : luaL_checklstring(L, 4, &vlen);
  int32_t partition = (int32_t) luaL_optinteger(L, 5, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e;
  for (;;) {
    e = rd_kafka_producev(p->rk, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_KEY((void*) key, klen),
                          RD_KAFKA_V_VALUE((void*) value, vlen),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
    rd_kafka_poll(p->rk, 10);  /* the local queue is full: let it drain */
  }
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  rd_kafka_poll(p->rk, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* producer:flush(timeout_ms) -> true | nil, message: waits until every
** queued message is delivered (or failed: the first failure's message). */
static int l_flush(lua_State* L) {
  lproducer_t* p = check_producer(L);
  rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, (int) luaL_checkinteger(L, 2));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  if (p->failed) {
    p->failed = 0;
    return push_fail(L, p->error);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* producer:init_transactions(timeout_ms), producer:begin(),
** producer:commit(timeout_ms), producer:abort(timeout_ms) -> true | nil,
** message, whether the transaction must be aborted. librdkafka's
** transactions: init fences an earlier producer of the same
** transactional.id (its open transaction is aborted). */
static int l_init_transactions(lua_State* L) {
  lproducer_t* p = check_producer(L);
  return push_error(L, rd_kafka_init_transactions(p->rk,
                       (int) luaL_checkinteger(L, 2)));
}

static int l_begin(lua_State* L) {
  return push_error(L, rd_kafka_begin_transaction(check_producer(L)->rk));
}

static int l_commit(lua_State* L) {
  lproducer_t* p = check_producer(L);
  return push_error(L, rd_kafka_commit_transaction(p->rk,
                       (int) luaL_checkinteger(L, 2)));
}

static int l_abort(lua_State* L) {
  lproducer_t* p = check_producer(L);
  return push_error(L, rd_kafka_abort_transaction(p->rk,
                       (int) luaL_checkinteger(L, 2)));
}

/* producer:send_offsets(group, topic, partition, offset, timeout_ms) ->
** true | nil, message, whether the transaction must be aborted: commits
** offset for group on the partition as part of the open transaction
** (visible only if it commits). */
static int l_send_offsets(lua_State* L) {
  lproducer_t* p = check_producer(L);
  rd_kafka_consumer_group_metadata_t* group =
      rd_kafka_consumer_group_metadata_new(luaL_checkstring(L, 2));
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_error_t* error;
  rd_kafka_topic_partition_list_add(list, luaL_checkstring(L, 3),
      (int32_t) luaL_checkinteger(L, 4))->offset =
      (int64_t) luaL_checknumber(L, 5);
  error = rd_kafka_send_offsets_to_transaction(p->rk, list, group,
                                               (int) luaL_checkinteger(L, 6));
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_consumer_group_metadata_destroy(group);
  return push_error(L, error);
}

/* producer:close(timeout_ms): flushes (up to timeout_ms) and frees it. */
static int l_producer_close(lua_State* L) {
  lproducer_t* p = luaL_checkudata(L, 1, PRODUCER_MT);
  if (p->rk == NULL) return 0;
  rd_kafka_flush(p->rk, (int) luaL_optinteger(L, 2, 0));
  rd_kafka_destroy(p->rk);
  p->rk = NULL;
  return 0;
}

/* -- Mock cluster -------------------------------------------------------- */

/* core.kafka_mock(brokers) -> mock | nil, message: librdkafka's mock
** cluster of that many brokers on loopback ports, served by threads of
** this process until mock:close(). */
static int l_kafka_mock(lua_State* L) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  lmock_t* m = lua_newuserdata(L, sizeof(*m));
  rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);  /* no config notes */
  memset(m, 0, sizeof(*m));
  luaL_getmetatable(L, MOCK_MT);
  lua_setmetatable(L, -2);
  m->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  if (m->rk == NULL) {
    rd_kafka_conf_destroy(conf);
    return push_fail(L, err);
  }
  m->cluster = rd_kafka_mock_cluster_new(m->rk,
                                         (int) luaL_checkinteger(L, 1));
  if (m->cluster == NULL) return push_fail(L, "kafka: no mock cluster");
  return 1;
}

static lmock_t* check_mock(lua_State* L) {
  lmock_t* m = luaL_checkudata(L, 1, MOCK_MT);
  if (m->cluster == NULL) luaL_error(L, "kafka: the mock cluster is closed");
  return m;
}

/* mock:bootstraps() -> "host:port,..." */
static int l_bootstraps(lua_State* L) {
  lua_pushstring(L, rd_kafka_mock_cluster_bootstraps(check_mock(L)->cluster));
  return 1;
}

/* mock:create_topic(name, partitions) -> true | nil, message */
static int l_create_topic(lua_State* L) {
  lmock_t* m = check_mock(L);
  rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(
      m->cluster, luaL_checkstring(L, 2), (int) luaL_checkinteger(L, 3), 1);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return push_fail(L, rd_kafka_err2str(e));
  lua_pushboolean(L, 1);
  return 1;
}

/* mock:push_errors(api_key, { error codes }): the next requests of that
** Kafka API (e.g. 26, EndTxn) fail with these errors, in order. */
static int l_push_errors(lua_State* L) {
  lmock_t* m = check_mock(L);
  int16_t api = (int16_t) luaL_checkinteger(L, 2);
  rd_kafka_resp_err_t errs[64];
  size_t n, i;
  luaL_checktype(L, 3, LUA_TTABLE);
  n = lua_objlen(L, 3);
  if (n > 64) n = 64;
  for (i = 0; i < n; i++) {
    lua_rawgeti(L, 3, (int) i + 1);
    errs[i] = (rd_kafka_resp_err_t) luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  rd_kafka_mock_push_request_errors_array(m->cluster, api, n, errs);
  return 0;
}

static int l_mock_close(lua_State* L) {
  lmock_t* m = luaL_checkudata(L, 1, MOCK_MT);
  if (m->cluster != NULL) rd_kafka_mock_cluster_destroy(m->cluster);
  if (m->rk != NULL) rd_kafka_destroy(m->rk);
  m->cluster = NULL;
  m->rk = NULL;
  return 0;
}

static const luaL_Reg consumer_methods[] = {
  { "partitions", l_partitions }, { "watermarks", l_watermarks },
  { "assign", l_assign }, { "poll", l_poll }, { "committed", l_committed },
  { "close", l_consumer_close },
  { NULL, NULL }
};

static const luaL_Reg producer_methods[] = {
  { "produce", l_produce }, { "flush", l_flush },
  { "init_transactions", l_init_transactions }, { "begin", l_begin },
  { "commit", l_commit }, { "abort", l_abort },
  { "send_offsets", l_send_offsets }, { "close", l_producer_close },
  { NULL, NULL }
};

static const luaL_Reg mock_methods[] = {
  { "bootstraps", l_bootstraps }, { "create_topic", l_create_topic },
  { "push_errors", l_push_errors }, { "close", l_mock_close }, { NULL, NULL }
};

void wr__lua_open_kafka(lua_State* L) {
  wr__lua_new_gc_class(L, CONSUMER_MT, consumer_methods, l_consumer_close);
  wr__lua_new_gc_class(L, PRODUCER_MT, producer_methods, l_producer_close);
  wr__lua_new_gc_class(L, MOCK_MT, mock_methods, l_mock_close);
  lua_pushcfunction(L, l_kafka_consumer);
  lua_setfield(L, -2, "kafka_consumer");
  lua_pushcfunction(L, l_kafka_producer);
  lua_setfield(L, -2, "kafka_producer");
  lua_pushcfunction(L, l_kafka_mock);
  lua_setfield(L, -2, "kafka_mock");
  lua_pushstring(L, rd_kafka_version_str());
  lua_setfield(L, -2, "kafka_version");
}
#else
void wr__lua_open_kafka(lua_State* L) {
  (void) L;
}
#endif
