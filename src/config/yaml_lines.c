/*
 * One pass over the YAML events: a table of where every key is, and the
 * structural check of the document against the libcyaml schema tables.
 *
 * libcyaml 1.3 stops at the first problem and names the key but not always
 * the line. Walking the same schema tables here lets --check list every
 * unknown key, missing key or bad value at once, each with its line, and
 * keeps one list of keys (schema.c) for both passes. The checks are a strict
 * subset of what libcyaml accepts (e.g. "1.5" for a number or "maybe" for a
 * boolean are refused here), so a clean walk means a clean libcyaml load.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "config/conf.h"
#include "config/yaml_lines.h"

/* Deeper than any valid file; bounds the walk on hostile input. */
#define WALK_MAX_DEPTH 64

struct yl_entry {
    char *path;    /* owned */
    unsigned line; /* 1-based */
    unsigned col;  /* 1-based */
};

struct yaml_lines {
    struct yl_entry *v; /* sorted by path once the scan is done */
    size_t n;
    size_t cap;
};

/* One open mapping or sequence. */
struct walk_frame {
    const cyaml_schema_value_t *schema; /* NULL: inside a subtree already reported */
    bool is_map;                        /* mapping, else sequence */
    size_t path_len;                    /* length of this node's path */
    yaml_mark_t mark;                   /* where its key (or itself) starts */
    bool have_key;                      /* mapping: a key was read, its value is next */
    const cyaml_schema_field_t *field;  /* mapping: schema of that value, NULL = skip */
    uint64_t seen;                      /* mapping: fields already given, by index */
    unsigned count;                     /* sequence: entries so far */
};

struct walk {
    const char *file;
    const cyaml_schema_value_t *top;
    struct config_errors *errs;
    size_t errs_start; /* errs->n when the scan began */
    unsigned nerr;
    struct yaml_lines *yl;
    char *path; /* current key path, NUL-terminated */
    size_t path_len;
    size_t path_cap;
    struct walk_frame stack[WALK_MAX_DEPTH];
    size_t depth;
    yaml_mark_t key_mark; /* where the key or item of the next value starts */
    unsigned ndocs;
    bool abort; /* stop checking: the rest would only be noise */
    bool oom;
};

/* Reports one problem at mark (0-based, as libyaml gives it) for path. */
static void __attribute__((format(printf, 4, 5)))
walk_error(struct walk *w, yaml_mark_t mark, const char *path, const char *fmt, ...)
{
    char *msg;
    va_list ap;
    int n;

    w->nerr++;
    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        w->oom = true;
        return;
    }
    if (config_errors_at(w->errs, w->file, (unsigned)mark.line + 1, (unsigned)mark.column + 1, path,
                         "%s", msg) < 0)
        w->oom = true;
    free(msg);
}

/* Appends a formatted component to the current path. Returns 0 or -1. */
static int __attribute__((format(printf, 2, 3))) path_push(struct walk *w, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(w->path + w->path_len, w->path_cap - w->path_len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -1;
        if ((size_t)n < w->path_cap - w->path_len)
            break;
        size_t cap = (w->path_cap + (size_t)n + 1) * 2;
        char *p = realloc(w->path, cap);
        if (p == NULL) {
            w->oom = true;
            return -1;
        }
        w->path = p;
        w->path_cap = cap;
    }
    w->path_len += (size_t)n;
    return 0;
}

/* Cuts the current path back to len bytes. */
static void path_cut(struct walk *w, size_t len)
{
    w->path_len = len;
    w->path[len] = '\0';
}

/* Records the position of the current path. */
static void lines_add(struct walk *w, yaml_mark_t mark)
{
    struct yaml_lines *yl = w->yl;
    struct yl_entry *v;

    if (yl->n == yl->cap) {
        size_t cap = yl->cap ? yl->cap * 2 : 64;
        v = realloc(yl->v, cap * sizeof(*v));
        if (v == NULL) {
            w->oom = true;
            return;
        }
        yl->v = v;
        yl->cap = cap;
    }
    v = &yl->v[yl->n];
    v->path = strdup(w->path);
    if (v->path == NULL) {
        w->oom = true;
        return;
    }
    v->line = (unsigned)mark.line + 1;
    v->col = (unsigned)mark.column + 1;
    yl->n++;
}

/* Position recorded for path during the walk (table not sorted yet), or NULL. */
static const struct yl_entry *lines_find_linear(const struct yaml_lines *yl, const char *path)
{
    for (size_t i = 0; i < yl->n; i++)
        if (strcmp(yl->v[i].path, path) == 0)
            return &yl->v[i];
    return NULL;
}

/* Edit distance of a and b, capped: good enough to suggest a key. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned row[64], prev, tmp;

    if (la >= 64 || lb >= 64)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        prev = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            tmp = row[j];
            unsigned best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = tmp;
        }
    }
    return row[lb];
}

/* The key of fields closest to key when it looks like a typo, else NULL. */
static const char *suggest_key(const cyaml_schema_field_t *fields, const char *key)
{
    const char *best = NULL;
    unsigned best_d = 3;

    for (const cyaml_schema_field_t *f = fields; f->key != NULL; f++) {
        unsigned d = edit_distance(key, f->key);
        if (d < best_d && d < strlen(f->key)) {
            best = f->key;
            best_d = d;
        }
    }
    return best;
}

/*
 * Parses a decimal whole number no larger than max. Returns 0, -1 (not a
 * number), -2 (too large) or -3 (leading zero: libcyaml would read octal).
 */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -1;
    if (s[0] == '0' && s[1] != '\0')
        return -3;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (uint64_t)(*s - '0')) / 10)
            return -2;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* Largest unsigned value that fits in size bytes. */
static uint64_t uint_max(uint32_t size)
{
    return size >= 8 ? UINT64_MAX : (UINT64_C(1) << (size * 8)) - 1;
}

/* Checks an integer scalar against its schema. */
static void check_uint(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                       const char *text)
{
    uint64_t v, max = uint_max(s->data_size);
    int rc = parse_uint(text, max, &v);

    if (rc == -1)
        walk_error(w, ev->start_mark, w->path, "expected a whole number, got '%s'", text);
    else if (rc == -2)
        walk_error(w, ev->start_mark, w->path, "%s is too large (at most %" PRIu64 ")", text, max);
    else if (rc == -3)
        walk_error(w, ev->start_mark, w->path, "'%s': write numbers without leading zeros", text);
}

/* Checks a signed integer scalar (kept for completeness of the schema types). */
static void check_int(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                      const char *text)
{
    uint64_t v, max = uint_max(s->data_size) >> 1;
    const char *digits = text[0] == '-' ? text + 1 : text;

    if (parse_uint(digits, max + 1, &v) != 0 || (digits == text && v > max))
        walk_error(w, ev->start_mark, w->path, "expected a whole number in range, got '%s'", text);
}

/* Checks a boolean: true/false, yes/no, on/off in any case. */
static void check_bool(struct walk *w, const yaml_event_t *ev, const char *text)
{
    static const char *const words[] = {"true", "false", "yes", "no", "on", "off"};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcasecmp(text, words[i]) == 0)
            return;
    walk_error(w, ev->start_mark, w->path, "expected true or false, got '%s'", text);
}

/* Checks an enum value: one of the schema's strings, exactly. */
static void check_enum(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                       const char *text)
{
    char list[256];
    size_t used = 0;

    for (uint32_t i = 0; i < s->enumeration.count; i++)
        if (strcmp(text, s->enumeration.strings[i].str) == 0)
            return;
    list[0] = '\0';
    for (uint32_t i = 0; i < s->enumeration.count && used < sizeof(list); i++) {
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", i ? " | " : "",
                         s->enumeration.strings[i].str);
        if (n > 0)
            used += (size_t)n;
    }
    walk_error(w, ev->start_mark, w->path, "invalid value '%s' (expected %s)", text, list);
}

/* Checks a string's length. */
static void check_string(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                         size_t len)
{
    if (len < s->string.min && s->string.min == 1)
        walk_error(w, ev->start_mark, w->path, "must not be empty");
    else if (len < s->string.min)
        walk_error(w, ev->start_mark, w->path, "too short (at least %" PRIu32 " bytes)",
                   s->string.min);
    else if (len > s->string.max)
        walk_error(w, ev->start_mark, w->path, "too long (at most %" PRIu32 " bytes)",
                   s->string.max);
}

/* Checks a scalar value against the schema expected at the current path. */
static void check_scalar(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;

    if (strlen(text) != len) {
        walk_error(w, ev->start_mark, w->path, "value contains a NUL byte");
        return;
    }
    switch (s->type) {
    case CYAML_MAPPING:
        if (len == 0 && w->depth == 0)
            walk_error(w, (yaml_mark_t){0}, NULL, "the file is empty");
        else if (len == 0)
            walk_error(w, ev->start_mark, w->path,
                       "empty value; expected a mapping "
                       "(write {} to take every default)");
        else
            walk_error(w, ev->start_mark, w->path, "expected a mapping, got '%s'", text);
        break;
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
        if (len == 0)
            walk_error(w, ev->start_mark, w->path,
                       "empty value; expected a list (write [] "
                       "for none)");
        else
            walk_error(w, ev->start_mark, w->path, "expected a list, got '%s'", text);
        break;
    case CYAML_UINT:
        check_uint(w, s, ev, text);
        break;
    case CYAML_INT:
        check_int(w, s, ev, text);
        break;
    case CYAML_BOOL:
        check_bool(w, ev, text);
        break;
    case CYAML_ENUM:
        check_enum(w, s, ev, text);
        break;
    case CYAML_STRING:
        check_string(w, s, ev, len);
        break;
    default:
        break;
    }
}

/* Name of what a schema expects, for "expected X" messages. */
static const char *schema_kind(const cyaml_schema_value_t *s)
{
    switch (s->type) {
    case CYAML_MAPPING:
        return "a mapping";
    case CYAML_SEQUENCE:
    case CYAML_SEQUENCE_FIXED:
        return "a list";
    case CYAML_ENUM:
    case CYAML_STRING:
        return "a single value";
    case CYAML_BOOL:
        return "true or false";
    default:
        return "a number";
    }
}

/* A value (scalar or whole collection) is complete: back to its parent. */
static void value_done(struct walk *w)
{
    struct walk_frame *f;

    if (w->depth == 0)
        return;
    f = &w->stack[w->depth - 1];
    path_cut(w, f->path_len);
    if (f->is_map)
        f->have_key = false;
}

/* Opens a mapping or sequence whose expected schema is s (NULL = skip). */
static void open_collection(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev,
                            bool is_map)
{
    struct walk_frame *f;
    bool ok_map = s != NULL && s->type == CYAML_MAPPING;
    bool ok_seq = s != NULL && (s->type == CYAML_SEQUENCE || s->type == CYAML_SEQUENCE_FIXED);

    if (w->depth == WALK_MAX_DEPTH) {
        walk_error(w, ev->start_mark, w->path, "nested too deeply");
        w->abort = true;
        return;
    }
    if (s != NULL && (is_map ? !ok_map : !ok_seq)) {
        walk_error(w, ev->start_mark, w->path, "expected %s, got a %s", schema_kind(s),
                   is_map ? "mapping" : "list");
        s = NULL;
    }
    f = &w->stack[w->depth++];
    memset(f, 0, sizeof(*f));
    f->schema = s;
    f->is_map = is_map;
    f->path_len = w->path_len;
    f->mark = w->path_len ? w->key_mark : ev->start_mark;
}

/* Handles a node where a value is expected, with schema s (NULL = skip). */
static void walk_value(struct walk *w, const cyaml_schema_value_t *s, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        if (s != NULL)
            walk_error(w, ev->start_mark, w->path,
                       "YAML aliases (*%s) are not supported; repeat the value",
                       (const char *)ev->data.alias.anchor);
        value_done(w);
        break;
    case YAML_SCALAR_EVENT:
        if (s != NULL)
            check_scalar(w, s, ev);
        value_done(w);
        break;
    case YAML_MAPPING_START_EVENT:
        open_collection(w, s, ev, true);
        break;
    case YAML_SEQUENCE_START_EVENT:
        open_collection(w, s, ev, false);
        break;
    default:
        break;
    }
}

/* Handles a mapping key in frame f: records it and finds its schema. */
static void walk_key(struct walk *w, struct walk_frame *f, const yaml_event_t *ev)
{
    const char *key = (const char *)ev->data.scalar.value;
    const cyaml_schema_field_t *fields;
    const struct yl_entry *first;
    const char *hint;
    unsigned i;

    if (ev->type != YAML_SCALAR_EVENT) {
        walk_error(w, ev->start_mark, w->path, "mapping keys must be plain names");
        w->abort = true;
        return;
    }
    if (path_push(w, "%s%s", f->path_len ? "." : "", key) < 0)
        return;
    f->have_key = true;
    f->field = NULL;
    w->key_mark = ev->start_mark;
    if (f->schema == NULL)
        return;
    fields = f->schema->mapping.fields;
    for (i = 0; fields[i].key != NULL && strcmp(fields[i].key, key) != 0; i++)
        ;
    if (fields[i].key == NULL) {
        hint = suggest_key(fields, key);
        walk_error(w, ev->start_mark, w->path, "unknown key '%s'%s%s%s", key,
                   hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        lines_add(w, ev->start_mark);
        return;
    }
    if (i < 64 && (f->seen & (UINT64_C(1) << i))) {
        first = lines_find_linear(w->yl, w->path);
        walk_error(w, ev->start_mark, w->path, "duplicate key (first given at line %u)",
                   first ? first->line : 0);
        return;
    }
    if (i < 64)
        f->seen |= UINT64_C(1) << i;
    f->field = &fields[i];
    lines_add(w, ev->start_mark);
}

/* Reports the required keys of mapping frame f that were not given. */
static void check_required(struct walk *w, const struct walk_frame *f)
{
    const cyaml_schema_field_t *fields = f->schema->mapping.fields;

    for (unsigned i = 0; fields[i].key != NULL; i++) {
        if ((fields[i].value.flags & CYAML_FLAG_OPTIONAL) || i >= 64 ||
            (f->seen & (UINT64_C(1) << i)))
            continue;
        if (path_push(w, "%s%s", f->path_len ? "." : "", fields[i].key) < 0)
            return;
        walk_error(w, f->mark, w->path, "missing required key");
        path_cut(w, f->path_len);
    }
}

/* Reports a sequence with too few or too many entries. */
static void check_count(struct walk *w, const struct walk_frame *f)
{
    const cyaml_schema_value_t *s = f->schema;

    if (f->count < s->sequence.min)
        walk_error(w, f->mark, w->path, "needs at least %" PRIu32 " entr%s", s->sequence.min,
                   s->sequence.min == 1 ? "y" : "ies");
    else if (f->count > s->sequence.max)
        walk_error(w, f->mark, w->path, "takes at most %" PRIu32 " entries", s->sequence.max);
}

/* Closes the innermost mapping or sequence. */
static void walk_end(struct walk *w)
{
    struct walk_frame *f;

    if (w->depth == 0)
        return;
    f = &w->stack[w->depth - 1];
    path_cut(w, f->path_len);
    if (f->schema != NULL && f->is_map)
        check_required(w, f);
    else if (f->schema != NULL)
        check_count(w, f);
    w->depth--;
    value_done(w);
}

/* Dispatches a node (scalar, alias, collection start) by where it appears. */
static void walk_node(struct walk *w, const yaml_event_t *ev)
{
    struct walk_frame *f;
    const cyaml_schema_value_t *entry;

    if (w->depth == 0) {
        walk_value(w, w->ndocs > 1 ? NULL : w->top, ev);
        return;
    }
    f = &w->stack[w->depth - 1];
    if (f->is_map && !f->have_key) {
        walk_key(w, f, ev);
        return;
    }
    if (f->is_map) {
        walk_value(w, f->field ? &f->field->value : NULL, ev);
        return;
    }
    if (path_push(w, "[%u]", f->count++) < 0)
        return;
    w->key_mark = ev->start_mark;
    entry = f->schema ? f->schema->sequence.entry : NULL;
    if (entry != NULL)
        lines_add(w, ev->start_mark);
    walk_value(w, entry, ev);
}

/* Feeds one libyaml event to the walk. */
static void walk_event(struct walk *w, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++w->ndocs > 1)
            walk_error(w, ev->start_mark, NULL,
                       "yaml: only one document per file (found a second '---')");
        break;
    case YAML_ALIAS_EVENT:
    case YAML_SCALAR_EVENT:
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        walk_node(w, ev);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        walk_end(w);
        break;
    default:
        break;
    }
}

/* Line and column (1-based) of byte offset in buf. */
static void offset_position(const char *buf, size_t len, size_t offset, unsigned *line,
                            unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (buf[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* Reports the parser's syntax error as "FILE:L:C: yaml: problem (context)". */
static void report_syntax(struct walk *w, const yaml_parser_t *p, const char *buf, size_t len)
{
    const char *problem = p->problem ? p->problem : "syntax error";
    unsigned line, col;

    /* Whatever the walk said about a file that does not parse is noise
     * (e.g. "missing key" for a mapping cut short): keep only the syntax. */
    while (w->errs->n > w->errs_start)
        free(w->errs->lines[--w->errs->n]);
    w->nerr = 1;
    if (p->error == YAML_MEMORY_ERROR) {
        w->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        offset_position(buf, len, p->problem_offset, &line, &col);
        config_errors_at(w->errs, w->file, line, col, NULL, "yaml: %s", problem);
        return;
    }
    line = (unsigned)p->problem_mark.line + 1;
    col = (unsigned)p->problem_mark.column + 1;
    if (p->context != NULL)
        config_errors_at(w->errs, w->file, line, col, NULL, "yaml: %s (%s at line %u)", problem,
                         p->context, (unsigned)p->context_mark.line + 1);
    else
        config_errors_at(w->errs, w->file, line, col, NULL, "yaml: %s", problem);
}

/* Runs the parser over buf, feeding every event to the walk. */
static void walk_run(struct walk *w, const char *buf, size_t len)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    bool done = false;

    if (!yaml_parser_initialize(&parser)) {
        w->oom = true;
        return;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    while (!done) {
        if (!yaml_parser_parse(&parser, &ev)) {
            report_syntax(w, &parser, buf, len);
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        if (!w->abort && !w->oom)
            walk_event(w, &ev);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
}

/* Orders entries by path for bsearch. */
static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct yl_entry *)a)->path, ((const struct yl_entry *)b)->path);
}

/* See yaml_lines.h. */
struct yaml_lines *yaml_lines_scan(const char *file, const char *buf, size_t len,
                                   const cyaml_schema_value_t *schema, struct config_errors *errs,
                                   unsigned *nerr)
{
    struct walk w;

    memset(&w, 0, sizeof(w));
    w.file = file;
    w.top = schema;
    w.errs = errs;
    w.errs_start = errs->n;
    w.yl = calloc(1, sizeof(*w.yl));
    w.path_cap = 128;
    w.path = malloc(w.path_cap);
    if (w.yl == NULL || w.path == NULL)
        goto oom;
    w.path[0] = '\0';
    walk_run(&w, buf, len);
    if (w.oom)
        goto oom;
    if (w.ndocs == 0 && w.nerr == 0)
        walk_error(&w, (yaml_mark_t){0}, NULL, "the file is empty");
    free(w.path);
    if (w.yl->n > 0)
        qsort(w.yl->v, w.yl->n, sizeof(*w.yl->v), entry_cmp);
    *nerr = w.nerr;
    return w.yl;
oom:
    free(w.path);
    yaml_lines_free(w.yl);
    *nerr = w.nerr + 1;
    return NULL;
}

/* See yaml_lines.h. */
int yaml_lines_find(const struct yaml_lines *yl, const char *path, unsigned *line, unsigned *col)
{
    struct yl_entry key = {.path = (char *)path};
    const struct yl_entry *e;

    if (yl == NULL || yl->n == 0)
        return -1;
    e = bsearch(&key, yl->v, yl->n, sizeof(*yl->v), entry_cmp);
    if (e == NULL)
        return -1;
    *line = e->line;
    *col = e->col;
    return 0;
}

/* See yaml_lines.h. */
int yaml_lines_has(const struct yaml_lines *yl, const char *path)
{
    unsigned line, col;

    return yaml_lines_find(yl, path, &line, &col) == 0;
}

/* See yaml_lines.h. */
void yaml_lines_locate(const struct yaml_lines *yl, const char *path, unsigned *line, unsigned *col)
{
    char buf[512];
    char *cut;

    *line = 1;
    *col = 1;
    snprintf(buf, sizeof(buf), "%s", path);
    while (buf[0] != '\0') {
        if (yaml_lines_find(yl, buf, line, col) == 0)
            return;
        cut = strrchr(buf, buf[strlen(buf) - 1] == ']' ? '[' : '.');
        if (cut == NULL)
            cut = buf;
        *cut = '\0';
    }
}

/* See yaml_lines.h. */
void yaml_lines_free(struct yaml_lines *yl)
{
    if (yl == NULL)
        return;
    for (size_t i = 0; i < yl->n; i++)
        free(yl->v[i].path);
    free(yl->v);
    free(yl);
}
