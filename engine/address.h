/*
** Addresses of weir's connections, as the Lua layer spells them: a Unix
** domain socket path, or "tcp:HOST:PORT" where HOST is a numeric IPv4 or
** IPv6 address (IPv6 bare, without brackets: "tcp:::1:7000") and PORT is
** a decimal number from 0 to 65535 (0: the system picks one on listen).
** Parsing does no name lookup and no I/O; any address that is not
** "tcp:..." is a socket path.
*/
#ifndef WEIR_ADDRESS_H
#define WEIR_ADDRESS_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest "tcp:HOST:PORT" wr_address_format writes, NUL included. */
#define WR_ADDRESS_TCP_MAX_BYTES 64

/* Returns 1 if address names a TCP endpoint ("tcp:..."), else 0 (a Unix
** socket path). */
int wr_address_is_tcp(const char* address);

/* Parses "tcp:HOST:PORT" into *sa (a sockaddr_in or sockaddr_in6, port in
** network order). Returns 0, or UV_EINVAL if the prefix is missing, there
** is no ":PORT", PORT is empty, not decimal or above 65535, HOST is 256
** bytes or longer, or HOST is not a numeric IPv4 or IPv6 address. *sa is
** undefined on error. */
int wr_address_parse_tcp(const char* address, struct sockaddr_storage* sa);

/* Parses any address, a socket path or "tcp:HOST:PORT", into *sa for
** connect(2) or bind(2), and its length in bytes into *len. Returns 0,
** UV_EINVAL (a bad TCP address, as wr_address_parse_tcp) or
** UV_ENAMETOOLONG (a path that does not fit a sockaddr_un, NUL included).
*/
int wr_address_parse(const char* address, struct sockaddr_storage* sa,
                     socklen_t* len);

/* Writes "tcp:HOST:PORT" for the IPv4 or IPv6 address sa (as
** getsockname(2) returns it) into out, of size bytes. Returns 0, UV_EINVAL
** if sa is of another family, or UV_ENOSPC if out is too small
** (WR_ADDRESS_TCP_MAX_BYTES always suffices). */
int wr_address_format(const struct sockaddr* sa, char* out, size_t size);

#endif
