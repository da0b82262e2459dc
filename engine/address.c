/*
** Addresses of weir's connections (see address.h).
*/
#include "address.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <uv.h>

#define TCP_PREFIX "tcp:"
#define TCP_PREFIX_BYTES 4

int wr_address_is_tcp(const char* address) {
  return strncmp(address, TCP_PREFIX, TCP_PREFIX_BYTES) == 0;
}

/* Parses the decimal port at s (to the end of the string). Returns the
** port, or -1 unless s is 1 to 5 digits worth at most 65535. */
static int parse_port(const char* s) {
  int port = 0;
  size_t n;
  for (n = 0; s[n] != '\0'; n++) {
    if (n == 5 || s[n] < '0' || s[n] > '9') return -1;
    port = port * 10 + (s[n] - '0');
  }
  return n == 0 || port > 65535 ? -1 : port;
}

int wr_address_parse_tcp(const char* address, struct sockaddr_storage* sa) {
  char host[256];
  const char* colon;
  size_t n;
  int port;
  if (!wr_address_is_tcp(address)) return UV_EINVAL;
  address += TCP_PREFIX_BYTES;
  /* The last colon: an IPv6 HOST has colons of its own. */
  colon = strrchr(address, ':');
  if (colon == NULL) return UV_EINVAL;
  n = (size_t) (colon - address);
  if (n >= sizeof(host)) return UV_EINVAL;
  port = parse_port(colon + 1);
  if (port < 0) return UV_EINVAL;
  memcpy(host, address, n);
  host[n] = '\0';
  memset(sa, 0, sizeof(*sa));
  if (uv_ip4_addr(host, port, (struct sockaddr_in*) sa) == 0) return 0;
  memset(sa, 0, sizeof(*sa));
  return uv_ip6_addr(host, port, (struct sockaddr_in6*) sa) == 0 ? 0
                                                                 : UV_EINVAL;
}

int wr_address_parse(const char* address, struct sockaddr_storage* sa,
                     socklen_t* len) {
  struct sockaddr_un* un = (struct sockaddr_un*) sa;
  int r;
  if (wr_address_is_tcp(address)) {
    r = wr_address_parse_tcp(address, sa);
    if (r < 0) return r;
    *len = sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
    return 0;
  }
  if (strlen(address) >= sizeof(un->sun_path)) return UV_ENAMETOOLONG;
  memset(sa, 0, sizeof(*sa));
  un->sun_family = AF_UNIX;
  strcpy(un->sun_path, address);
  *len = sizeof(*un);
  return 0;
}

int wr_address_format(const struct sockaddr* sa, char* out, size_t size) {
  char host[64];
  int port, n;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in* in = (const struct sockaddr_in*) sa;
    if (uv_ip4_name(in, host, sizeof(host)) != 0) return UV_EINVAL;
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*) sa;
    if (uv_ip6_name(in6, host, sizeof(host)) != 0) return UV_EINVAL;
    port = ntohs(in6->sin6_port);
  } else {
    return UV_EINVAL;
  }
  n = snprintf(out, size, TCP_PREFIX "%s:%d", host, port);
  return n < 0 || (size_t) n >= size ? UV_ENOSPC : 0;
}
