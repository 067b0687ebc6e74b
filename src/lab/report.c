/*
 * The HTML report of "tlsgate compare --report FILE": one self-contained page
 * (inline CSS, inline SVG, no script, nothing fetched) with the table and
 * charts of throughput, latency, handshakes, gateway CPU per request, and
 * throughput and latency distribution over the run, one colour per listener.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare.h"

#define CHART_W  760 /* svg width */
#define LABEL_W  150 /* room for listener names left of the bars */
#define BAR_H    22  /* one bar */
#define PLOT_H   240 /* height of the line charts' plot area */
#define MARGIN_L 60  /* line charts: room for the y axis labels */
#define MARGIN_B 40  /* line charts: room for the x axis labels */

/* Colour of row i: by mode, so a mode looks the same across reports; a repeated mode gets another.
 */
static const char *row_color(const struct compare_row *rows, size_t i)
{
    static const char *const spare[] = {"#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"};
    static const char *const modes[][2] = {{"passthrough", "#4e79a7"},
                                           {"offload", "#f28e2b"},
                                           {"bridge", "#59a14f"},
                                           {"http", "#e15759"}};

    for (size_t j = 0; j < i; j++)
        if (strcmp(rows[j].mode, rows[i].mode) == 0)
            return spare[i % (sizeof(spare) / sizeof(spare[0]))];
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
        if (strcmp(rows[i].mode, modes[m][0]) == 0)
            return modes[m][1];
    return spare[i % (sizeof(spare) / sizeof(spare[0]))];
}

/* Writes s with HTML's special characters escaped. */
static void esc(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* A "nice" axis maximum at or above v: 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of ten. */
static double nice_max(double v)
{
    static const double steps[] = {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10};
    double p = 1;

    if (v <= 0)
        return 1;
    while (p * 10 <= v)
        p *= 10;
    while (p > v)
        p /= 10;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        if (v <= steps[i] * p)
            return steps[i] * p;
    return 10 * p;
}

/*
 * Horizontal bars, one per row with value vals[i] (negative: not measured);
 * groups > 1 draws that many bars per row from vals[i * groups + g], with the
 * group names in gnames and shades of the row colour.
 */
static void chart_bars(FILE *f, const char *title, const char *unit, const struct compare_row *rows,
                       size_t n, const double *vals, int groups, const char *const *gnames)
{
    double max = 0;
    int row_h = BAR_H * groups + 10, h = (int)n * row_h + 40;
    int plot_w = CHART_W - LABEL_W - 110;

    for (size_t i = 0; i < n * (size_t)groups; i++)
        if (vals[i] > max)
            max = vals[i];
    max = nice_max(max);
    fprintf(f, "<h2>");
    esc(f, title);
    fprintf(f, "</h2>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            CHART_W, h, CHART_W, h);
    for (int t = 0; t <= 4; t++) {
        int x = LABEL_W + plot_w * t / 4;

        fprintf(f,
                "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%g</text>\n",
                x, x, h - 25, x, h - 10, max * t / 4);
    }
    for (size_t i = 0; i < n; i++) {
        int y0 = 15 + (int)i * row_h;

        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"lbl\">", LABEL_W - 8,
                y0 + row_h / 2);
        esc(f, rows[i].listener);
        fprintf(f, "</text>\n");
        for (int g = 0; g < groups; g++) {
            double v = vals[i * (size_t)groups + (size_t)g];
            int y = y0 + g * BAR_H, w = v > 0 ? (int)(plot_w * v / max + 0.5) : 0;

            fprintf(f,
                    "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "fill-opacity=\"%.2f\"/>",
                    LABEL_W, y, w, BAR_H - 4, row_color(rows, i), 1.0 - 0.3 * g);
            if (v < 0)
                fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"val\">n/a</text>\n", LABEL_W + 4,
                        y + BAR_H - 9);
            else
                fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"val\">%.4g %s%s%s</text>\n",
                        LABEL_W + w + 4, y + BAR_H - 9, v, unit, groups > 1 ? " " : "",
                        groups > 1 ? gnames[g] : "");
        }
    }
    fprintf(f, "</svg>\n");
}

/* Legend: one coloured swatch per row. */
static void legend(FILE *f, const struct compare_row *rows, size_t n)
{
    fprintf(f, "<p class=\"legend\">");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "<span><i style=\"background:%s\"></i>", row_color(rows, i));
        esc(f, rows[i].listener);
        fprintf(f, " (%s)</span> ", rows[i].mode);
    }
    fprintf(f, "</p>\n");
}

/* A line chart: series i has npts[i] points (xs[i], ys[i]), one colour per row. */
struct line_chart {
    const char *title;        /* heading */
    const char *ylabel;       /* y axis caption */
    const char *xlabel;       /* x axis caption */
    double *const *xs;        /* x values per series, in [0, xmax] */
    double *const *ys;        /* y values per series, >= 0 */
    const size_t *npts;       /* points per series */
    double xmax;              /* right end of the x axis */
    const char *const *xtick; /* x tick labels */
    const double *xtick_at;   /* their x positions */
    int nxticks;              /* number of x ticks */
    bool logy;                /* logarithmic y axis (powers of ten) */
};

/* Height above the plot's bottom of value v on c's y axis [ylo, yhi]. */
static double y_pos(const struct line_chart *c, double v, double ylo, double yhi, int h)
{
    if (!c->logy)
        return h * v / yhi;
    if (v < ylo)
        v = ylo;
    return h * (log10(v) - log10(ylo)) / (log10(yhi) - log10(ylo));
}

static void chart_lines(FILE *f, const struct line_chart *c, const struct compare_row *rows,
                        size_t n)
{
    double ylo = 0, yhi = 0, lo = 0;
    int w = CHART_W - MARGIN_L - 20, h = PLOT_H, nyt = 4;

    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < c->npts[i]; k++) {
            if (c->ys[i][k] > yhi)
                yhi = c->ys[i][k];
            if (c->ys[i][k] > 0 && (lo == 0 || c->ys[i][k] < lo))
                lo = c->ys[i][k];
        }
    }
    if (c->logy) {
        ylo = pow(10, floor(log10(lo > 0 ? lo : 0.01)));
        yhi = pow(10, ceil(log10(yhi > ylo ? yhi : ylo * 10)));
        if (yhi <= ylo)
            yhi = ylo * 10;
        nyt = (int)(log10(yhi) - log10(ylo) + 0.5);
    } else {
        yhi = nice_max(yhi);
    }
    fprintf(f, "<h2>");
    esc(f, c->title);
    fprintf(f, "</h2>\n<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
            CHART_W, h + MARGIN_B + 20, CHART_W, h + MARGIN_B + 20);
    for (int t = 0; t <= nyt; t++) {
        double v = c->logy ? ylo * pow(10, t) : yhi * t / nyt;
        int y = 10 + h - (int)(y_pos(c, v, ylo, yhi, h) + 0.5);

        fprintf(f,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"end\">%g</text>\n",
                MARGIN_L, y, MARGIN_L + w, y, MARGIN_L - 6, y + 4, v);
    }
    for (int t = 0; t < c->nxticks; t++) {
        int x = MARGIN_L + (int)(w * c->xtick_at[t] / c->xmax);

        fprintf(f,
                "<line x1=\"%d\" y1=\"10\" x2=\"%d\" y2=\"%d\" class=\"grid\"/>"
                "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">%s</text>\n",
                x, x, 10 + h, x, h + 28, c->xtick[t]);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" class=\"ax\" text-anchor=\"middle\">", MARGIN_L + w / 2,
            h + MARGIN_B + 14);
    esc(f, c->xlabel);
    fprintf(f,
            "</text><text x=\"12\" y=\"%d\" class=\"ax\" transform=\"rotate(-90 12 %d)\" "
            "text-anchor=\"middle\">",
            10 + h / 2, 10 + h / 2);
    esc(f, c->ylabel);
    fprintf(f, "</text>\n");
    for (size_t i = 0; i < n; i++) {
        if (c->npts[i] == 0)
            continue;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"",
                row_color(rows, i));
        for (size_t k = 0; k < c->npts[i]; k++)
            fprintf(f, "%.1f,%.1f ", MARGIN_L + w * c->xs[i][k] / c->xmax,
                    10 + h - y_pos(c, c->ys[i][k], ylo, yhi, h));
        fprintf(f, "\"/>\n");
    }
    fprintf(f, "</svg>\n");
    legend(f, rows, n);
}

/* Requests/s over the run, per 100 ms slot. */
static int chart_timeline(FILE *f, const struct compare_row *rows, size_t n)
{
    double **xs = calloc(n, sizeof(*xs)), **ys = calloc(n, sizeof(*ys)), xmax = 0;
    size_t *np = calloc(n, sizeof(*np));
    char ticks[6][32];
    const char *tickp[6];
    double tickx[6];
    int rc = -1;

    if (xs == NULL || ys == NULL || np == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct loadgen_result *r = &rows[i].res;
        size_t slots = (size_t)(r->elapsed_s * 1000 / LOADGEN_SLOT_MS);

        if (slots > r->nseries)
            slots = r->nseries;
        xs[i] = calloc(slots + 1, sizeof(double));
        ys[i] = calloc(slots + 1, sizeof(double));
        if (xs[i] == NULL || ys[i] == NULL)
            goto out;
        for (size_t k = 0; k < slots; k++) {
            xs[i][k] = (double)(k + 1) * LOADGEN_SLOT_MS / 1000.0;
            ys[i][k] = (double)r->series[k] * 1000.0 / LOADGEN_SLOT_MS;
        }
        np[i] = slots;
        if (r->elapsed_s > xmax)
            xmax = r->elapsed_s;
    }
    if (xmax <= 0)
        xmax = 1;
    for (int t = 0; t < 6; t++) {
        tickx[t] = xmax * t / 5;
        snprintf(ticks[t], sizeof(ticks[t]), "%.1f s", tickx[t]);
        tickp[t] = ticks[t];
    }
    {
        const struct line_chart c = {"Throughput during the run (requests/s per 100 ms)",
                                     "requests/s",
                                     "time since the start of the run",
                                     xs,
                                     ys,
                                     np,
                                     xmax,
                                     tickp,
                                     tickx,
                                     6,
                                     false};

        chart_lines(f, &c, rows, n);
    }
    rc = 0;
out:
    for (size_t i = 0; xs != NULL && ys != NULL && i < n; i++) {
        free(xs[i]);
        free(ys[i]);
    }
    free(xs);
    free(ys);
    free(np);
    return rc;
}

/* Latency by percentile, on a scale that spreads the tail (50, 75, 90, 99, 99.9, 99.99). */
static int chart_percentiles(FILE *f, const struct compare_row *rows, size_t n)
{
    static const double pcts[] = {0, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100};
    static const char *const names[] = {"min", "25", "50",   "75",    "90",
                                        "95",  "99", "99.9", "99.99", "max"};
    enum { NP = sizeof(pcts) / sizeof(pcts[0]) };
    double **xs = calloc(n, sizeof(*xs)), **ys = calloc(n, sizeof(*ys)), pos[NP];
    size_t *np = calloc(n, sizeof(*np));
    int rc = -1;

    if (xs == NULL || ys == NULL || np == NULL)
        goto out;
    for (int k = 0; k < NP; k++)
        pos[k] = k;
    for (size_t i = 0; i < n; i++) {
        const struct lat_hist *h = &rows[i].res.hist;

        xs[i] = calloc(NP, sizeof(double));
        ys[i] = calloc(NP, sizeof(double));
        if (xs[i] == NULL || ys[i] == NULL)
            goto out;
        if (h->count == 0)
            continue;
        for (int k = 0; k < NP; k++) {
            xs[i][k] = pos[k];
            ys[i][k] = (double)(k == 0 ? h->min : lat_hist_percentile(h, pcts[k])) / 1000.0;
        }
        np[i] = NP;
    }
    {
        const struct line_chart c = {"Latency by percentile (log scale)",
                                     "ms",
                                     "percentile",
                                     xs,
                                     ys,
                                     np,
                                     NP - 1,
                                     names,
                                     pos,
                                     NP,
                                     true};

        chart_lines(f, &c, rows, n);
    }
    rc = 0;
out:
    for (size_t i = 0; xs != NULL && ys != NULL && i < n; i++) {
        free(xs[i]);
        free(ys[i]);
    }
    free(xs);
    free(ys);
    free(np);
    return rc;
}

/* The table, as in the terminal, plus the error breakdown. */
static void report_table(FILE *f, const struct compare_row *rows, size_t n)
{
    fprintf(f, "<table>\n<tr><th>listener</th><th>mode</th><th>address</th><th>SNI/Host</th>"
               "<th>requests</th><th>req/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
               "<th>handshakes/s</th><th>errors</th><th>gateway &micro;s/req</th>"
               "<th>origin saw</th><th>gateway sees</th><th>features</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const struct compare_row *r = &rows[i];
        const struct lat_hist *h = &r->res.hist;

        fprintf(f, "<tr><td><i class=\"sw\" style=\"background:%s\"></i>", row_color(rows, i));
        esc(f, r->listener);
        fprintf(f, "</td><td>%s</td><td>", r->mode);
        esc(f, r->address);
        fprintf(f, "</td><td>");
        esc(f, r->sni);
        fprintf(f,
                "</td><td class=\"n\">%llu</td><td class=\"n\">%.1f</td><td class=\"n\">%.2f</td>"
                "<td class=\"n\">%.2f</td><td class=\"n\">%.2f</td>",
                (unsigned long long)r->res.requests, r->rps,
                (double)lat_hist_percentile(h, 50) / 1000.0,
                (double)lat_hist_percentile(h, 90) / 1000.0,
                (double)lat_hist_percentile(h, 99) / 1000.0);
        if (r->tls)
            fprintf(f, "<td class=\"n\">%.1f</td>", r->hs_rate);
        else
            fprintf(f, "<td class=\"n\">-</td>");
        fprintf(f,
                "<td class=\"n\" title=\"connect %llu, tls %llu, io %llu, timeout %llu, "
                "http %llu, 4xx %llu, 5xx %llu\">%llu</td>",
                (unsigned long long)r->res.err_connect, (unsigned long long)r->res.err_tls,
                (unsigned long long)r->res.err_io, (unsigned long long)r->res.err_timeout,
                (unsigned long long)r->res.err_http, (unsigned long long)r->res.status[4],
                (unsigned long long)r->res.status[5], (unsigned long long)loadgen_errors(&r->res));
        if (r->cpu_ok)
            fprintf(f, "<td class=\"n\">%.1f%s</td><td>", r->cpu_us_per_req,
                    r->cpu_per_listener ? "" : " (process)");
        else
            fprintf(f, "<td class=\"n\">n/a</td><td>");
        esc(f, r->origin_view);
        fprintf(f, "</td><td>");
        esc(f, r->sees);
        fprintf(f, "</td><td>");
        esc(f, r->features);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n");
}

static const char report_css[] =
    "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;"
    "padding:0 1em}"
    "h1{font-size:1.5em}h2{font-size:1.1em;margin-top:2em}"
    "table{border-collapse:collapse;font-size:12.5px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;vertical-align:top}th{background:#f3f3f3}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "i.sw,.legend i{display:inline-block;width:10px;height:10px;margin-right:5px}"
    ".legend span{margin-right:1.2em}"
    "svg .grid{stroke:#e4e4e4}svg .ax{font-size:11px;fill:#666}"
    "svg .lbl{font-size:12px}svg .val{font-size:11px;fill:#333}"
    ".note{color:#555;font-size:13px}";

int report_write(const char *path, const struct compare_opts *o, const struct compare_row *rows,
                 size_t n)
{
    static const char *const lat_names[] = {"p50", "p90", "p99"};
    double *v1 = calloc(n ? n : 1, sizeof(double)), *v3 = calloc(n ? 3 * n : 1, sizeof(double));
    char when[64];
    time_t now = time(NULL);
    FILE *f;
    int rc = -1, saved;

    if (v1 == NULL || v3 == NULL) {
        free(v1);
        free(v3);
        errno = ENOMEM;
        return -1;
    }
    f = fopen(path, "w");
    if (f == NULL)
        goto out;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<title>tlsgate compare</title>\n<style>%s</style></head><body>\n",
            report_css);
    fprintf(f, "<h1>tlsgate compare</h1>\n<p>Configuration <code>");
    esc(f, o->config);
    fprintf(f,
            "</code>, %s. Each listener got the same load in turn: %u connections for %u ms, "
            "%s, <code>GET ",
            when, o->connections, o->duration_ms,
            o->new_connections ? "a new connection (full TLS handshake, no resumption) per request"
                               : "HTTP/1.1 keep-alive");
    esc(f, o->path);
    fprintf(f, "</code>.</p>\n");
    report_table(f, rows, n);
    fprintf(f, "<p class=\"note\">Latency runs from a request's first byte (from connect() "
               "when it opens a connection) to its response's last byte. Gateway CPU comes "
               "from the admin endpoint's <code>/metrics</code> before and after each run, "
               "divided by the requests completed. &ldquo;Origin saw&rdquo; is the lab "
               "origin's echo of one request: whether TLS reached it and from which "
               "address.</p>\n");

    for (size_t i = 0; i < n; i++)
        v1[i] = rows[i].rps;
    chart_bars(f, "Requests per second", "req/s", rows, n, v1, 1, NULL);
    for (size_t i = 0; i < n; i++) {
        v3[3 * i] = (double)lat_hist_percentile(&rows[i].res.hist, 50) / 1000.0;
        v3[3 * i + 1] = (double)lat_hist_percentile(&rows[i].res.hist, 90) / 1000.0;
        v3[3 * i + 2] = (double)lat_hist_percentile(&rows[i].res.hist, 99) / 1000.0;
    }
    chart_bars(f, "Latency (p50, p90, p99)", "ms", rows, n, v3, 3, lat_names);
    for (size_t i = 0; i < n; i++)
        v1[i] = rows[i].cpu_ok ? rows[i].cpu_us_per_req : -1;
    chart_bars(f, "Gateway CPU per request", "\xc2\xb5s", rows, n, v1, 1, NULL);
    for (size_t i = 0; i < n; i++)
        v1[i] = rows[i].tls ? rows[i].hs_rate : -1;
    chart_bars(f, "TLS handshakes per second (client side)", "/s", rows, n, v1, 1, NULL);
    if (chart_timeline(f, rows, n) < 0 || chart_percentiles(f, rows, n) < 0) {
        errno = ENOMEM;
        goto close;
    }
    fprintf(f, "<p class=\"note\">Written by <code>tlsgate compare</code>. Passthrough leaves "
               "TLS to the origins: the gateway's CPU per request is its relay cost only, "
               "and it sees nothing of HTTP. Offload and bridge pay for TLS at the gateway "
               "(bridge twice) and in exchange can route, deny, redirect, set cookies and "
               "add headers.</p>\n</body></html>\n");
    rc = ferror(f) ? -1 : 0;
close:
    saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    errno = saved;
out:
    saved = errno;
    free(v1);
    free(v3);
    errno = saved;
    return rc;
}
