/*
 * Private to src/config: where each key of a YAML file is, and the structural
 * check of the file against the libcyaml schema.
 *
 * Paths name keys as an operator reads them: "listeners[1].tls.certificates[0].key"
 * for a key, "listeners[1]" for a sequence item. Lines and columns are 1-based.
 */
#ifndef TLSGATE_CONFIG_YAML_LINES_H
#define TLSGATE_CONFIG_YAML_LINES_H

#include <cyaml/cyaml.h>
#include <stddef.h>

#include "config.h"

struct yaml_lines;

/*
 * Parses buf (len bytes read from file) with libyaml's event API, records the
 * position of every key and sequence item, and checks the document against
 * schema the way libcyaml would load it, but reporting every problem with its
 * line instead of stopping at the first: YAML syntax ("FILE:L:C: yaml: ..."),
 * unknown and duplicate keys, missing required keys, a list or mapping where
 * the other is expected, bad integers, booleans, enum values and string
 * lengths, too few sequence entries, aliases (not supported).
 *
 * Each problem is appended to errs and counted in *nerr. When *nerr is 0 the
 * document loads with cyaml_load_data() under the same schema. Returns the
 * table (also when problems were found), or NULL when out of memory. The
 * caller frees it with yaml_lines_free().
 */
struct yaml_lines *yaml_lines_scan(const char *file, const char *buf, size_t len,
                                   const cyaml_schema_value_t *schema, struct config_errors *errs,
                                   unsigned *nerr);

/* Position of exactly path. Returns 0, or -1 when path is not in the file. */
int yaml_lines_find(const struct yaml_lines *yl, const char *path, unsigned *line, unsigned *col);

/*
 * Position of path or, when it is absent from the file (a missing key), of
 * its nearest present ancestor; 1:1 when there is none. yl may be NULL.
 */
void yaml_lines_locate(const struct yaml_lines *yl, const char *path, unsigned *line,
                       unsigned *col);

/* True when path was written in the file. */
int yaml_lines_has(const struct yaml_lines *yl, const char *path);

/* Frees the table. NULL is ignored. */
void yaml_lines_free(struct yaml_lines *yl);

#endif
