/* Connection addresses: "tcp:HOST:PORT" and socket paths, parsed and
** formatted without name lookups. */
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

#include "harness.h"
#include "address.h"

static int parses(const char* address, struct sockaddr_storage* sa) {
  return wr_address_parse_tcp(address, sa) == 0;
}

static int refuses(const char* address) {
  struct sockaddr_storage sa;
  return wr_address_parse_tcp(address, &sa) == UV_EINVAL;
}

static void parses_an_ipv4_host_and_port(void) {
  struct sockaddr_storage sa;
  const struct sockaddr_in* in = (const struct sockaddr_in*) &sa;
  CHECK(parses("tcp:127.0.0.1:7000", &sa));
  CHECK(sa.ss_family == AF_INET);
  CHECK(in->sin_port == htons(7000));
  CHECK(in->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
}

static void parses_port_zero_and_the_highest_port(void) {
  struct sockaddr_storage sa;
  CHECK(parses("tcp:0.0.0.0:0", &sa));
  CHECK(((struct sockaddr_in*) &sa)->sin_port == 0);
  CHECK(parses("tcp:10.1.2.3:65535", &sa));
  CHECK(((struct sockaddr_in*) &sa)->sin_port == htons(65535));
}

static void parses_a_bare_ipv6_host(void) {
  struct sockaddr_storage sa;
  const struct sockaddr_in6* in6 = (const struct sockaddr_in6*) &sa;
  CHECK(parses("tcp:::1:7000", &sa));
  CHECK(sa.ss_family == AF_INET6);
  CHECK(in6->sin6_port == htons(7000));
  CHECK(memcmp(&in6->sin6_addr, &in6addr_loopback, 16) == 0);
  CHECK(parses("tcp:2001:db8::5:443", &sa));
  CHECK(sa.ss_family == AF_INET6);
  CHECK(in6->sin6_port == htons(443));
}

static void refuses_an_address_without_the_prefix(void) {
  CHECK(refuses("127.0.0.1:7000"));
  CHECK(refuses("udp:127.0.0.1:7000"));
  CHECK(refuses(""));
}

static void refuses_a_missing_port(void) {
  CHECK(refuses("tcp:127.0.0.1"));
  CHECK(refuses("tcp:127.0.0.1:"));
  CHECK(refuses("tcp:"));
}

static void refuses_a_port_that_is_not_a_decimal_number(void) {
  CHECK(refuses("tcp:127.0.0.1:http"));
  CHECK(refuses("tcp:127.0.0.1:80x"));
  CHECK(refuses("tcp:127.0.0.1:-1"));
  CHECK(refuses("tcp:127.0.0.1:+80"));
  CHECK(refuses("tcp:127.0.0.1: 80"));
}

static void refuses_a_port_above_65535(void) {
  CHECK(refuses("tcp:127.0.0.1:65536"));
  CHECK(refuses("tcp:127.0.0.1:100000"));
  CHECK(refuses("tcp:127.0.0.1:4294967376"));  /* 2^32 + 80 */
}

static void refuses_a_host_that_is_not_a_numeric_address(void) {
  CHECK(refuses("tcp:localhost:7000"));
  CHECK(refuses("tcp::7000"));
  CHECK(refuses("tcp:127.0.0.256:7000"));
  CHECK(refuses("tcp:[::1]:7000"));
}

static void refuses_an_over_long_host(void) {
  char address[1024];
  memcpy(address, "tcp:", 4);
  memset(address + 4, '1', sizeof(address) - 4);
  memcpy(address + sizeof(address) - 6, ":7000", 6);
  CHECK(refuses(address));
}

static void parses_a_socket_path(void) {
  struct sockaddr_storage sa;
  const struct sockaddr_un* un = (const struct sockaddr_un*) &sa;
  socklen_t len = 0;
  CHECK(wr_address_parse("/tmp/run/worker-1.sock", &sa, &len) == 0);
  CHECK(sa.ss_family == AF_UNIX);
  CHECK(strcmp(un->sun_path, "/tmp/run/worker-1.sock") == 0);
  CHECK(len == sizeof(struct sockaddr_un));
}

static void gives_the_length_of_each_tcp_family(void) {
  struct sockaddr_storage sa;
  socklen_t len = 0;
  CHECK(wr_address_parse("tcp:127.0.0.1:1", &sa, &len) == 0);
  CHECK(len == sizeof(struct sockaddr_in));
  CHECK(wr_address_parse("tcp:::1:1", &sa, &len) == 0);
  CHECK(len == sizeof(struct sockaddr_in6));
  CHECK(wr_address_parse("tcp:127.0.0.1:x", &sa, &len) == UV_EINVAL);
}

static void refuses_a_path_longer_than_a_socket_address_holds(void) {
  struct sockaddr_storage sa;
  struct sockaddr_un un;
  char path[sizeof(un.sun_path) + 1];
  socklen_t len;
  memset(path, 'p', sizeof(path));
  path[sizeof(un.sun_path)] = '\0';  /* no room for the NUL */
  CHECK(wr_address_parse(path, &sa, &len) == UV_ENAMETOOLONG);
  path[sizeof(un.sun_path) - 1] = '\0';  /* the longest that fits */
  CHECK(wr_address_parse(path, &sa, &len) == 0);
}

static void formats_what_it_parses(void) {
  const char* addresses[] = { "tcp:127.0.0.1:7000", "tcp:0.0.0.0:0",
                              "tcp:::1:65535", "tcp:2001:db8::5:443" };
  size_t i;
  for (i = 0; i < sizeof(addresses) / sizeof(addresses[0]); i++) {
    struct sockaddr_storage sa;
    char out[WR_ADDRESS_TCP_MAX_BYTES];
    CHECK(parses(addresses[i], &sa));
    CHECK(wr_address_format((struct sockaddr*) &sa, out, sizeof(out)) == 0);
    CHECK(strcmp(out, addresses[i]) == 0);
  }
}

static void formats_a_long_ipv6_address(void) {
  struct sockaddr_in6 in6;
  char out[WR_ADDRESS_TCP_MAX_BYTES];
  memset(&in6, 0, sizeof(in6));
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(65535);
  memset(&in6.sin6_addr, 0xff, 16);
  CHECK(wr_address_format((struct sockaddr*) &in6, out, sizeof(out)) == 0);
  CHECK(strcmp(out, "tcp:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:65535") ==
        0);
}

static void refuses_to_format_into_too_small_a_buffer(void) {
  struct sockaddr_storage sa;
  char out[12];
  CHECK(parses("tcp:127.0.0.1:7000", &sa));
  CHECK(wr_address_format((struct sockaddr*) &sa, out, sizeof(out)) ==
        UV_ENOSPC);
}

static void refuses_to_format_a_socket_path(void) {
  struct sockaddr_storage sa;
  socklen_t len;
  char out[WR_ADDRESS_TCP_MAX_BYTES];
  CHECK(wr_address_parse("/tmp/x.sock", &sa, &len) == 0);
  CHECK(wr_address_format((struct sockaddr*) &sa, out, sizeof(out)) ==
        UV_EINVAL);
}

static void tells_tcp_addresses_from_paths(void) {
  CHECK(wr_address_is_tcp("tcp:127.0.0.1:1"));
  CHECK(!wr_address_is_tcp("/run/weir/worker-0.sock"));
  CHECK(!wr_address_is_tcp("tcp"));
}

const wr_test_t wr_address_tests[] = {
  { "address: parses an IPv4 host and port", parses_an_ipv4_host_and_port },
  { "address: parses port 0 and the highest port",
    parses_port_zero_and_the_highest_port },
  { "address: parses a bare IPv6 host", parses_a_bare_ipv6_host },
  { "address: refuses an address without the prefix",
    refuses_an_address_without_the_prefix },
  { "address: refuses a missing port", refuses_a_missing_port },
  { "address: refuses a port that is not a decimal number",
    refuses_a_port_that_is_not_a_decimal_number },
  { "address: refuses a port above 65535", refuses_a_port_above_65535 },
  { "address: refuses a host that is not a numeric address",
    refuses_a_host_that_is_not_a_numeric_address },
  { "address: refuses an over-long host", refuses_an_over_long_host },
  { "address: parses a socket path", parses_a_socket_path },
  { "address: gives the length of each TCP family",
    gives_the_length_of_each_tcp_family },
  { "address: refuses a path longer than a socket address holds",
    refuses_a_path_longer_than_a_socket_address_holds },
  { "address: formats what it parses", formats_what_it_parses },
  { "address: formats a long IPv6 address", formats_a_long_ipv6_address },
  { "address: refuses to format into too small a buffer",
    refuses_to_format_into_too_small_a_buffer },
  { "address: refuses to format a socket path",
    refuses_to_format_a_socket_path },
  { "address: tells TCP addresses from paths", tells_tcp_addresses_from_paths },
  { NULL, NULL }
};
