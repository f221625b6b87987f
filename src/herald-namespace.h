/* herald-namespace.h: per-namespace channel rules ([namespace.NAME] groups).
 *
 * A channel "NAME:rest" belongs to namespace NAME; a channel without ':' (or
 * whose namespace is not configured) to the default one. A HeraldNamespaceSet
 * is immutable once built: the configuration swaps in a new set on SIGHUP and
 * keeps the old ones alive until it is finalised, so a const HeraldNamespace*
 * read on any thread stays valid.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  HERALD_NS_PUBLISH_CLAIMS, /* as the token's publish claim says */
  HERALD_NS_PUBLISH_NONE,   /* no client may publish (HTTP API and D-Bus still do) */
  HERALD_NS_PUBLISH_ALL,    /* any authenticated client, anonymous connections included */
} HeraldNsPublish;

typedef enum
{
  HERALD_NS_SUBSCRIBE_CLAIMS, /* as the token's channels claim says */
  HERALD_NS_SUBSCRIBE_TOKEN,  /* needs a subscription token */
  HERALD_NS_SUBSCRIBE_PROXY,  /* asks the backend */
} HeraldNsSubscribe;

typedef struct
{
  char *name; /* "default" for the default namespace */
  guint history_size;
  guint history_ttl;
  gboolean presence;
  gboolean join_leave;
  HeraldNsPublish publish;
  HeraldNsSubscribe subscribe;
  gboolean publish_proxy;
  gboolean conflate;
} HeraldNamespace;

#define HERALD_NAMESPACE_DEFAULT "default"
#define HERALD_NAMESPACE_GROUP_PREFIX "namespace."

typedef struct _HeraldNamespaceSet HeraldNamespaceSet;

/* The keys of a [namespace.NAME] group, NULL-terminated */
const char *const *herald_namespace_keys (void);
/* TRUE when @name may name a namespace: 1-64 of [A-Za-z0-9_.@/-] */
gboolean herald_namespace_name_is_valid (const char *name);
/* The namespace NAME of a group "namespace.NAME", or NULL for other groups */
const char *herald_namespace_group_name (const char *group);

/* The defaults of the spec, with @name */
void herald_namespace_init (HeraldNamespace *ns, const char *name);
void herald_namespace_clear (HeraldNamespace *ns);

gboolean herald_ns_publish_from_string (const char *text, HeraldNsPublish *out);
gboolean herald_ns_subscribe_from_string (const char *text, HeraldNsSubscribe *out);
const char *herald_ns_publish_to_string (HeraldNsPublish value);
const char *herald_ns_subscribe_to_string (HeraldNsSubscribe value);

/* A set with only the default namespace (spec defaults) */
HeraldNamespaceSet *herald_namespace_set_new (void);
void herald_namespace_set_free (HeraldNamespaceSet *set);
/* The default namespace, to fill in (before any lookup) */
HeraldNamespace *herald_namespace_set_get_default (HeraldNamespaceSet *set);
/* Adds namespace @name (not "default"), initialised to the spec defaults,
 * or returns the one already there; to fill in (before any lookup) */
HeraldNamespace *herald_namespace_set_add (HeraldNamespaceSet *set, const char *name);
/* Never NULL: the channel's namespace or the default one */
const HeraldNamespace *herald_namespace_set_lookup (const HeraldNamespaceSet *set,
                                                    const char *channel);
/* The configured namespaces but the default one, sorted by name (transfer container) */
GPtrArray *herald_namespace_set_list (const HeraldNamespaceSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HeraldNamespaceSet, herald_namespace_set_free)

G_END_DECLS
