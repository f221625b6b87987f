/* herald-error.c: error domain and small validators shared by all layers.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <glib/gi18n.h>
#include <json-glib/json-glib.h>

#include "herald-error.h"

G_DEFINE_QUARK (herald - error - quark, herald_error)

gboolean
herald_channel_name_is_valid (const char *name)
{
  gsize n = 0;

  if (name == NULL)
    return FALSE;
  for (const char *p = name; *p; p++, n++)
    {
      if (n >= 255)
        return FALSE;
      if (!g_ascii_isalnum (*p) && strchr ("_.:@/-", *p) == NULL)
        return FALSE;
    }
  return n > 0;
}

gboolean
herald_connection_id_is_valid (const char *id)
{
  gsize n = 0;

  if (id == NULL)
    return FALSE;
  for (const char *p = id; *p; p++, n++)
    {
      if (n >= 64)
        return FALSE;
      if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
        return FALSE;
    }
  return n > 0;
}

char *
herald_connection_id_new (void)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  guint8 raw[16];
  gsize got = 0;
  char *out;

  while (got < sizeof raw)
    {
      ssize_t r = getrandom (raw + got, sizeof raw - got, 0);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          g_error ("getrandom failed: %s", g_strerror (errno));
        }
      got += r;
    }

  /* 128 random bits → 22 characters of 6 bits (the last one carries 2). */
  out = g_malloc (23);
  for (guint i = 0, bit = 0; i < 22; i++, bit += 6)
    {
      guint byte = bit / 8, shift = bit % 8;
      guint v = raw[byte] << 8 | (byte + 1 < sizeof raw ? raw[byte + 1] : 0);
      out[i] = alphabet[(v >> (10 - shift)) & 0x3f];
    }
  out[22] = '\0';
  return out;
}

/* json-glib 1.6 writes a double as g_ascii_dtostr() plus ".0" when that has no
 * '.', so 1e22 becomes "1e+22.0" and an overflowing 1e400 "inf.0": not JSON.
 * Refuse such numbers rather than pass invalid JSON on to subscribers. */
static gboolean
json_numbers_are_representable (JsonNode *node)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        JsonNode *member;

        json_object_iter_init (&iter, json_node_get_object (node));
        while (json_object_iter_next (&iter, NULL, &member))
          if (!json_numbers_are_representable (member))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);

        for (guint i = 0; i < json_array_get_length (array); i++)
          if (!json_numbers_are_representable (json_array_get_element (array, i)))
            return FALSE;
        return TRUE;
      }
    case JSON_NODE_VALUE:
      if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
        {
          char buf[G_ASCII_DTOSTR_BUF_SIZE];
          double v = json_node_get_double (node);

          if (!isfinite (v))
            return FALSE;
          g_ascii_dtostr (buf, sizeof buf, v);
          if (strchr (buf, '.') == NULL && strchr (buf, 'e') != NULL)
            return FALSE;
        }
      return TRUE;
    case JSON_NODE_NULL:
    default:
      return TRUE;
    }
}

char *
herald_json_normalize (const char *json, gssize length, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new_immutable ();
  g_autoptr (GError) local_error = NULL;
  JsonNode *root;

  if (length < 0)
    length = strlen (json);
  if (!g_utf8_validate_len (json, length, NULL))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("data is not valid UTF-8"));
      return NULL;
    }
  if (!json_parser_load_from_data (parser, json, length, &local_error))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("data is not valid JSON: %s"), local_error->message);
      return NULL;
    }
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT, _ ("data is empty"));
      return NULL;
    }
  return herald_json_node_to_data (root, error);
}

/**
 * herald_json_node_to_data:
 *
 * Serialises a value json-glib parsed (a request's "data" member) to the
 * compact text Herald delivers, refusing what json-glib 1.6 would write as
 * invalid JSON. Adapters that already hold a parsed node use this instead of
 * herald_json_normalize(), so the data is parsed once.
 *
 * Returns: (transfer full): the JSON text, or %NULL with @error set.
 */
char *
herald_json_node_to_data (JsonNode *node, GError **error)
{
  char *out;

  if (!json_numbers_are_representable (node))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("data has a number out of range"));
      return NULL;
    }
  out = json_to_string (node, FALSE);
  /* json-glib 1.6 takes octal escapes ("\222") in strings, which are not JSON
   * and can make bytes that are not UTF-8: subscribers must not get those. */
  if (!g_utf8_validate (out, -1, NULL))
    {
      g_set_error (error, HERALD_ERROR, HERALD_ERROR_INVALID_ARGUMENT,
                   _ ("data is not valid JSON: invalid escape in a string"));
      g_free (out);
      return NULL;
    }
  return out;
}
