/* herald-namespace.c: the namespaces of the configuration, looked up by
 * channel name. See herald-namespace.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "herald-namespace.h"

#include <string.h>

#define NAME_MAX_LEN 64

struct _HeraldNamespaceSet
{
  HeraldNamespace default_ns;
  GHashTable *named; /* name → HeraldNamespace*, owned */
};

static const char *const namespace_keys[]
    = { "history-size", "history-ttl",   "presence", "join-leave", "publish",
        "subscribe",    "publish-proxy", "conflate", NULL };

const char *const *
herald_namespace_keys (void)
{
  return namespace_keys;
}

gboolean
herald_namespace_name_is_valid (const char *name)
{
  gsize len;

  if (name == NULL)
    return FALSE;
  len = strlen (name);
  if (len == 0 || len > NAME_MAX_LEN)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (name[i]) && strchr ("_.@/-", name[i]) == NULL)
      return FALSE;
  return TRUE;
}

const char *
herald_namespace_group_name (const char *group)
{
  g_return_val_if_fail (group != NULL, NULL);

  if (!g_str_has_prefix (group, HERALD_NAMESPACE_GROUP_PREFIX))
    return NULL;
  return group + strlen (HERALD_NAMESPACE_GROUP_PREFIX);
}

void
herald_namespace_init (HeraldNamespace *ns, const char *name)
{
  g_return_if_fail (ns != NULL && name != NULL);

  *ns = (HeraldNamespace){
    .name = g_strdup (name),
    .history_size = 100,
    .history_ttl = 300,
    .presence = TRUE,
    .join_leave = FALSE,
    .publish = HERALD_NS_PUBLISH_CLAIMS,
    .subscribe = HERALD_NS_SUBSCRIBE_CLAIMS,
    .publish_proxy = FALSE,
    .conflate = FALSE,
  };
}

void
herald_namespace_clear (HeraldNamespace *ns)
{
  if (ns != NULL)
    g_clear_pointer (&ns->name, g_free);
}

static void
namespace_free (HeraldNamespace *ns)
{
  herald_namespace_clear (ns);
  g_free (ns);
}

static const char *const publish_names[] = { "claims", "none", "all" };
static const char *const subscribe_names[] = { "claims", "token", "proxy" };

gboolean
herald_ns_publish_from_string (const char *text, HeraldNsPublish *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (publish_names); i++)
    if (strcmp (text, publish_names[i]) == 0)
      {
        *out = (HeraldNsPublish)i;
        return TRUE;
      }
  return FALSE;
}

gboolean
herald_ns_subscribe_from_string (const char *text, HeraldNsSubscribe *out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (subscribe_names); i++)
    if (strcmp (text, subscribe_names[i]) == 0)
      {
        *out = (HeraldNsSubscribe)i;
        return TRUE;
      }
  return FALSE;
}

const char *
herald_ns_publish_to_string (HeraldNsPublish value)
{
  g_return_val_if_fail ((guint)value < G_N_ELEMENTS (publish_names), "claims");
  return publish_names[value];
}

const char *
herald_ns_subscribe_to_string (HeraldNsSubscribe value)
{
  g_return_val_if_fail ((guint)value < G_N_ELEMENTS (subscribe_names), "claims");
  return subscribe_names[value];
}

HeraldNamespaceSet *
herald_namespace_set_new (void)
{
  HeraldNamespaceSet *set = g_new0 (HeraldNamespaceSet, 1);

  herald_namespace_init (&set->default_ns, HERALD_NAMESPACE_DEFAULT);
  set->named
      = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)namespace_free);
  return set;
}

void
herald_namespace_set_free (HeraldNamespaceSet *set)
{
  if (set == NULL)
    return;
  herald_namespace_clear (&set->default_ns);
  g_hash_table_unref (set->named);
  g_free (set);
}

HeraldNamespace *
herald_namespace_set_get_default (HeraldNamespaceSet *set)
{
  g_return_val_if_fail (set != NULL, NULL);
  return &set->default_ns;
}

HeraldNamespace *
herald_namespace_set_add (HeraldNamespaceSet *set, const char *name)
{
  HeraldNamespace *ns;

  g_return_val_if_fail (set != NULL && name != NULL, NULL);

  if (strcmp (name, HERALD_NAMESPACE_DEFAULT) == 0)
    return &set->default_ns;
  ns = g_hash_table_lookup (set->named, name);
  if (ns == NULL)
    {
      ns = g_new0 (HeraldNamespace, 1);
      herald_namespace_init (ns, name);
      /* The key is the namespace's own name, freed with it */
      g_hash_table_insert (set->named, ns->name, ns);
    }
  return ns;
}

const HeraldNamespace *
herald_namespace_set_lookup (const HeraldNamespaceSet *set, const char *channel)
{
  const char *colon;
  const HeraldNamespace *ns;
  char buffer[NAME_MAX_LEN + 1];
  gsize len;

  g_return_val_if_fail (set != NULL, NULL);

  if (channel == NULL || g_hash_table_size (set->named) == 0
      || (colon = strchr (channel, ':')) == NULL)
    return &set->default_ns;
  len = (gsize)(colon - channel);
  /* Longer than any namespace name can be: not a configured one */
  if (len > NAME_MAX_LEN)
    return &set->default_ns;
  memcpy (buffer, channel, len);
  buffer[len] = '\0';
  ns = g_hash_table_lookup (set->named, buffer);
  return ns != NULL ? ns : &set->default_ns;
}

static int
compare_by_name (gconstpointer a, gconstpointer b)
{
  const HeraldNamespace *x = *(HeraldNamespace *const *)a;
  const HeraldNamespace *y = *(HeraldNamespace *const *)b;

  return strcmp (x->name, y->name);
}

GPtrArray *
herald_namespace_set_list (const HeraldNamespaceSet *set)
{
  GPtrArray *list = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (set != NULL, list);

  g_hash_table_iter_init (&iter, set->named);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  g_ptr_array_sort (list, compare_by_name);
  return list;
}
