/* herald-listen-guard.c: one Herald per listen address (see the header).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-listen-guard.h"

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <glib/gi18n.h>

static char *
address_text (GInetAddress *address, guint16 port)
{
  g_autofree char *host = g_inet_address_to_string (address);

  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]:%u", host, port);
  return g_strdup_printf ("%s:%u", host, port);
}

static socklen_t
claim_name (GInetAddress *address, guint16 port, struct sockaddr_un *sa)
{
  g_autofree char *text = address_text (address, port);
  gsize len;

  memset (sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  /* sun_path[0] = '\0': the abstract namespace, nothing in the file system */
  len = (gsize)g_snprintf (sa->sun_path + 1, sizeof sa->sun_path - 1, "herald/listen/%s", text);
  len = MIN (len, sizeof sa->sun_path - 2);
  return (socklen_t)(offsetof (struct sockaddr_un, sun_path) + 1 + len);
}

/* "heraldd (pid 123)" for a process, or NULL when it cannot be told */
static char *
describe_process (pid_t pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/comm", (int)pid);
  g_autofree char *comm = NULL;

  if (g_file_get_contents (path, &comm, NULL, NULL))
    return g_strdup_printf ("%s (pid %d)", g_strstrip (comm), (int)pid);
  return g_strdup_printf ("pid %d", (int)pid);
}

int
herald_listen_guard_claim (GInetAddress *address, guint16 port, GError **error)
{
  struct sockaddr_un sa;
  socklen_t sa_len = claim_name (address, port, &sa);
  g_autofree char *text = address_text (address, port);
  int fd, saved;

  g_return_val_if_fail (G_IS_INET_ADDRESS (address), -1);

  fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socket: %s",
                   g_strerror (saved));
      return -1;
    }
  if (bind (fd, (struct sockaddr *)&sa, sa_len) == 0 && listen (fd, 8) == 0)
    return fd;
  saved = errno;
  close (fd);
  if (saved != EADDRINUSE)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _ ("cannot claim %s: %s"),
                   text, g_strerror (saved));
      return -1;
    }

  /* Taken: ask the kernel who listens on the claim */
  {
    g_autofree char *holder = NULL;
    struct ucred cred = { 0 };
    socklen_t cred_len = sizeof cred;
    int probe = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (probe >= 0 && connect (probe, (struct sockaddr *)&sa, sa_len) == 0
        && getsockopt (probe, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) == 0 && cred.pid > 0)
      holder = describe_process (cred.pid);
    if (probe >= 0)
      close (probe);
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 _ ("cannot listen on %s: another Herald instance, %s, is listening there; stop "
                    "it first (only one heraldd may serve an address)"),
                 text, holder != NULL ? holder : _ ("pid unknown"));
    return -1;
  }
}

/* The socket inode listening on @port, from /proc/net/tcp or tcp6; 0 if none */
static guint64
listening_inode (const char *table, guint16 port)
{
  g_autofree char *contents = NULL;
  g_auto (GStrv) lines = NULL;

  if (!g_file_get_contents (table, &contents, NULL, NULL))
    return 0;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto (GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " ", -1);
      g_autoptr (GPtrArray) fields = g_ptr_array_new ();
      const char *colon;

      for (guint j = 0; f[j] != NULL; j++)
        if (*f[j] != '\0')
          g_ptr_array_add (fields, f[j]);
      /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
      if (fields->len < 10 || strcmp (fields->pdata[3], "0A") != 0)
        continue;
      colon = strrchr (fields->pdata[1], ':');
      if (colon == NULL || g_ascii_strtoull (colon + 1, NULL, 16) != port)
        continue;
      return g_ascii_strtoull (fields->pdata[9], NULL, 10);
    }
  return 0;
}

/* Which process holds the socket @inode: only our own user's (or all, as
 * root) can be seen; NULL when it cannot be found */
static char *
find_socket_owner (guint64 inode)
{
  g_autofree char *want = g_strdup_printf ("socket:[%" G_GUINT64_FORMAT "]", inode);
  g_autoptr (GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  if (proc == NULL || inode == 0)
    return NULL;
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *fd_dir = NULL;
      g_autoptr (GDir) fds = NULL;
      const char *fd;

      if (!g_ascii_isdigit (name[0]))
        continue;
      fd_dir = g_build_filename ("/proc", name, "fd", NULL);
      fds = g_dir_open (fd_dir, 0, NULL);
      while (fds != NULL && (fd = g_dir_read_name (fds)) != NULL)
        {
          g_autofree char *link = g_build_filename (fd_dir, fd, NULL);
          g_autofree char *target = g_file_read_link (link, NULL);

          if (target != NULL && strcmp (target, want) == 0)
            return describe_process ((pid_t)g_ascii_strtoll (name, NULL, 10));
        }
    }
  return NULL;
}

gboolean
herald_listen_guard_probe (GInetAddress *address, guint16 port, GError **error)
{
  g_autoptr (GSocketAddress) sa = g_inet_socket_address_new (address, port);
  g_autofree char *text = address_text (address, port);
  g_autofree char *holder = NULL;
  struct sockaddr_storage native;
  gboolean v6 = g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6;
  int one = 1;
  int fd, saved;

  g_return_val_if_fail (G_IS_INET_ADDRESS (address), FALSE);

  if (!g_socket_address_to_native (sa, &native, sizeof native, error))
    return FALSE;
  fd = socket (v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    {
      saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "socket: %s",
                   g_strerror (saved));
      return FALSE;
    }
  /* SO_REUSEADDR: connections in TIME_WAIT are no reason to fail. No
   * SO_REUSEPORT: so a listener with it conflicts too. */
  setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (v6)
    setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind (fd, (struct sockaddr *)&native, g_socket_address_get_native_size (sa)) == 0)
    {
      close (fd);
      return TRUE;
    }
  saved = errno;
  close (fd);
  if (saved != EADDRINUSE)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), _ ("cannot bind %s: %s"), text,
                   g_strerror (saved));
      return FALSE;
    }
  holder = find_socket_owner (listening_inode ("/proc/net/tcp", port));
  if (holder == NULL)
    holder = find_socket_owner (listening_inode ("/proc/net/tcp6", port));
  if (holder != NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 _ ("cannot listen on %s: the address is in use by %s"), text, holder);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                 _ ("cannot listen on %s: the address is in use by another process (ss -ltnp "
                    "'sport = :%u' shows which)"),
                 text, port);
  return FALSE;
}
