/* SPDX-License-Identifier: Apache-2.0 */
/*
 * errors_page.c — GET /errors/<code>: the section of docs/errors.md for a
 * reason code as a small HTML page (the target of every error_uri), and
 * GET /errors/ with the introduction and the table of all codes.
 *
 * The markdown is embedded at build time (errors_page.h) and rendered once
 * at start; requests are served from those static pages. The renderer knows
 * the subset errors.md uses: headings, paragraphs, bullet and numbered
 * lists (continuation lines indented), tables, fenced code blocks, `code`
 * and **bold**. Everything is HTML-escaped; an inline `code` that names a
 * section becomes a link to it. Links are relative ("expired", "./") so the
 * pages work behind any path prefix.
 *
 * The pages go out with the security headers of every HTML page
 * (srv_respond_html_static, pages.c); being static documents, they keep
 * Cache-Control: public, max-age=300.
 */
#include <stdlib.h>
#include <string.h>

#include "http/errors_page.h"
#include "http/internal.h"

#define PAGE_MAX (256u * 1024u)
#define CODE_MAX 64u

struct srv_page {
    char code[CODE_MAX];
    char *html;
    size_t len;
};

struct line {
    const char *p;
    size_t n;
};

struct doc {
    struct line *lines;
    size_t n_lines;
    const struct srv_page *pages; /* for links: the codes that have a page */
    size_t n_pages;
    const char *self; /* code of the page being rendered, or NULL */
};

/* Monospace sizes are relative (em), so that `code` in a heading is drawn
 * at the heading's size; long inline code breaks anywhere, code blocks and
 * tables scroll inside themselves, so that no page is wider than a phone. */
static const char css[] =
    "body{font:16px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;color:#222}"
    "code,pre{font-family:ui-monospace,monospace;font-size:.875em;background:#f4f4f4}"
    "code{padding:0 .2em;overflow-wrap:anywhere}"
    "pre{padding:.8em;overflow-x:auto;line-height:1.4}pre code{font-size:1em;padding:0;overflow-wrap:normal}"
    "h1,h2,h3{line-height:1.25;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;display:block;max-width:100%;overflow-x:auto}"
    "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
    "a{color:#0645ad}.nav{font-size:14px}";

static int is_blank(const struct line *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->p[i] != ' ' && l->p[i] != '\t') {
            return 0;
        }
    }
    return 1;
}

static int starts(const struct line *l, const char *s)
{
    size_t n = strlen(s);
    return l->n >= n && memcmp(l->p, s, n) == 0;
}

/* "1. " .. "99. ": returns the marker length or 0. */
static size_t ordered_marker(const struct line *l)
{
    size_t i = 0;
    while (i < l->n && i < 2 && l->p[i] >= '0' && l->p[i] <= '9') {
        i++;
    }
    if (i > 0 && i + 1 < l->n && l->p[i] == '.' && l->p[i + 1] == ' ') {
        return i + 2;
    }
    return 0;
}

static int heading_level(const struct line *l)
{
    int k = 0;
    while ((size_t)k < l->n && l->p[k] == '#' && k < 6) {
        k++;
    }
    return k > 0 && (size_t)k < l->n && l->p[k] == ' ' ? k : 0;
}

static int is_table(const struct line *l)
{
    return l->n > 0 && l->p[0] == '|';
}

static int block_start(const struct line *l)
{
    return starts(l, "```") || heading_level(l) > 0 || is_table(l) || starts(l, "- ") || ordered_marker(l) > 0;
}

static int has_page(const struct doc *d, const char *p, size_t n)
{
    for (size_t i = 0; i < d->n_pages; i++) {
        if (strlen(d->pages[i].code) == n && memcmp(d->pages[i].code, p, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Inline markup of p[0..n): `code` and **bold**. */
static void inline_md(srv_buf *b, const struct doc *d, const char *p, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        if (p[i] == '`') {
            const char *e = memchr(p + i + 1, '`', n - i - 1);
            if (e != NULL) {
                srv_buf_html(b, p + run, i - run);
                size_t cl = (size_t)(e - (p + i + 1));
                int link = has_page(d, p + i + 1, cl) &&
                           (d->self == NULL || strlen(d->self) != cl || memcmp(d->self, p + i + 1, cl) != 0);
                if (link) {
                    srv_buf_puts(b, "<a href=\"");
                    srv_buf_html(b, p + i + 1, cl);
                    srv_buf_puts(b, "\">");
                }
                srv_buf_puts(b, "<code>");
                srv_buf_html(b, p + i + 1, cl);
                srv_buf_puts(b, "</code>");
                if (link) {
                    srv_buf_puts(b, "</a>");
                }
                i = (size_t)(e - p) + 1;
                run = i;
                continue;
            }
        }
        if (p[i] == '*' && i + 1 < n && p[i + 1] == '*') {
            size_t j = i + 2;
            while (j + 1 < n && !(p[j] == '*' && p[j + 1] == '*')) {
                j++;
            }
            if (j + 1 < n && j > i + 2) {
                srv_buf_html(b, p + run, i - run);
                srv_buf_puts(b, "<strong>");
                inline_md(b, d, p + i + 2, j - i - 2);
                srv_buf_puts(b, "</strong>");
                i = j + 2;
                run = i;
                continue;
            }
        }
        i++;
    }
    srv_buf_html(b, p + run, n - run);
}

/* Text of lines [from, to) joined by newlines, with `strip` leading spaces
 * removed from each continuation line. */
static void inline_lines(srv_buf *b, const struct doc *d, size_t from, size_t to, size_t skip_first)
{
    for (size_t i = from; i < to; i++) {
        const struct line *l = &d->lines[i];
        size_t k = 0;
        if (i == from) {
            k = skip_first;
        } else {
            while (k < l->n && l->p[k] == ' ') {
                k++;
            }
            srv_buf_putc(b, '\n');
        }
        inline_md(b, d, l->p + k, l->n - k);
    }
}

static void table_row(srv_buf *b, const struct doc *d, const struct line *l, const char *cell)
{
    srv_buf_puts(b, "<tr>");
    size_t i = 1; /* after the leading '|' */
    while (i < l->n) {
        size_t j = i;
        int in_code = 0;
        while (j < l->n && (in_code || l->p[j] != '|')) {
            if (l->p[j] == '`') {
                in_code = !in_code;
            }
            j++;
        }
        if (j >= l->n) {
            break; /* text after the last '|' */
        }
        size_t a = i;
        size_t e = j;
        while (a < e && l->p[a] == ' ') {
            a++;
        }
        while (e > a && l->p[e - 1] == ' ') {
            e--;
        }
        srv_buf_printf(b, "<%s>", cell);
        inline_md(b, d, l->p + a, e - a);
        srv_buf_printf(b, "</%s>", cell);
        i = j + 1;
    }
    srv_buf_puts(b, "</tr>\n");
}

static int is_separator(const struct line *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strchr("|-: ", l->p[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* A list starting at line i; returns the line after it. */
static size_t list_md(srv_buf *b, const struct doc *d, size_t i, size_t to, int ordered)
{
    srv_buf_puts(b, ordered ? "<ol>\n" : "<ul>\n");
    while (i < to) {
        const struct line *l = &d->lines[i];
        size_t m = ordered ? ordered_marker(l) : (starts(l, "- ") ? 2 : 0);
        if (m == 0) {
            break;
        }
        size_t j = i + 1;
        while (j < to && !is_blank(&d->lines[j]) && d->lines[j].n > 0 && d->lines[j].p[0] == ' ') {
            j++;
        }
        srv_buf_puts(b, "<li>");
        inline_lines(b, d, i, j, m);
        srv_buf_puts(b, "</li>\n");
        i = j;
        /* a blank line between items keeps the list going */
        size_t k = i;
        while (k < to && is_blank(&d->lines[k])) {
            k++;
        }
        if (k < to && (ordered ? ordered_marker(&d->lines[k]) : (starts(&d->lines[k], "- ") ? 2u : 0u)) > 0) {
            i = k;
        }
    }
    srv_buf_puts(b, ordered ? "</ol>\n" : "</ul>\n");
    return i;
}

static void render(srv_buf *b, const struct doc *d, size_t from, size_t to, int level_shift)
{
    size_t i = from;
    while (i < to) {
        const struct line *l = &d->lines[i];
        if (is_blank(l)) {
            i++;
            continue;
        }
        if (starts(l, "```")) {
            size_t j = i + 1;
            srv_buf_puts(b, "<pre><code>");
            while (j < to && !starts(&d->lines[j], "```")) {
                srv_buf_html(b, d->lines[j].p, d->lines[j].n);
                srv_buf_putc(b, '\n');
                j++;
            }
            srv_buf_puts(b, "</code></pre>\n");
            i = j < to ? j + 1 : j;
            continue;
        }
        int h = heading_level(l);
        if (h > 0) {
            int lv = h - level_shift < 1 ? 1 : h - level_shift;
            srv_buf_printf(b, "<h%d>", lv);
            inline_md(b, d, l->p + h + 1, l->n - (size_t)h - 1);
            srv_buf_printf(b, "</h%d>\n", lv);
            i++;
            continue;
        }
        if (is_table(l)) {
            srv_buf_puts(b, "<table>\n");
            size_t j = i;
            int head = j + 1 < to && is_table(&d->lines[j + 1]) && is_separator(&d->lines[j + 1]);
            if (head) {
                table_row(b, d, &d->lines[j], "th");
                j += 2;
            }
            while (j < to && is_table(&d->lines[j])) {
                table_row(b, d, &d->lines[j], "td");
                j++;
            }
            srv_buf_puts(b, "</table>\n");
            i = j;
            continue;
        }
        if (starts(l, "- ")) {
            i = list_md(b, d, i, to, 0);
            continue;
        }
        if (ordered_marker(l) > 0) {
            i = list_md(b, d, i, to, 1);
            continue;
        }
        size_t j = i + 1;
        while (j < to && !is_blank(&d->lines[j]) && !block_start(&d->lines[j])) {
            j++;
        }
        srv_buf_puts(b, "<p>");
        inline_lines(b, d, i, j, 0);
        srv_buf_puts(b, "</p>\n");
        i = j;
    }
}

static void page_head(srv_buf *b, const char *title)
{
    srv_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
    srv_buf_html(b, title, strlen(title));
    srv_buf_printf(b, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n", css);
}

static void page_tail(srv_buf *b)
{
    srv_buf_puts(b, "</main>\n</body>\n</html>\n");
}

/* "## `code`" -> the code, or 0 when the line is not a section heading. */
static size_t section_code(const struct line *l, const char **code)
{
    if (!starts(l, "## `") || l->n < 6 || l->p[l->n - 1] != '`') {
        return 0;
    }
    *code = l->p + 4;
    return l->n - 5;
}

int srv_pages_build(struct tkh_server *s)
{
    const char *md = tkh_errors_md;
    size_t md_len = tkh_errors_md_len;
    size_t n_lines = 1;
    for (size_t i = 0; i < md_len; i++) {
        if (md[i] == '\n') {
            n_lines++;
        }
    }
    struct doc d;
    memset(&d, 0, sizeof d);
    d.lines = calloc(n_lines, sizeof *d.lines);
    if (d.lines == NULL) {
        return -1;
    }
    const char *p = md;
    for (size_t i = 0; i < n_lines; i++) {
        const char *nl = memchr(p, '\n', (size_t)(md + md_len - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(md + md_len - p);
        d.lines[i].p = p;
        d.lines[i].n = len > 0 && p[len - 1] == '\r' ? len - 1 : len;
        p = nl != NULL ? nl + 1 : md + md_len;
    }
    d.n_lines = n_lines;

    size_t n_sections = 0;
    size_t first_section = d.n_lines;
    for (size_t i = 0; i < d.n_lines; i++) {
        const char *code;
        if (section_code(&d.lines[i], &code) > 0) {
            n_sections++;
            if (first_section == d.n_lines) {
                first_section = i;
            }
        }
    }
    s->pages = calloc(n_sections > 0 ? n_sections : 1, sizeof *s->pages);
    if (s->pages == NULL) {
        free(d.lines);
        return -1;
    }
    for (size_t i = 0; i < d.n_lines; i++) {
        const char *code;
        size_t cl = section_code(&d.lines[i], &code);
        if (cl > 0 && cl < CODE_MAX) {
            memcpy(s->pages[s->pages_len].code, code, cl);
            s->pages[s->pages_len].code[cl] = '\0';
            s->pages_len++;
        }
    }
    d.pages = s->pages;
    d.n_pages = s->pages_len;

    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < d.n_lines && rc == 0; i++) {
        const char *code;
        size_t cl = section_code(&d.lines[i], &code);
        if (cl == 0 || cl >= CODE_MAX) {
            continue;
        }
        size_t end = i + 1;
        while (end < d.n_lines && !starts(&d.lines[end], "## ") && !starts(&d.lines[end], "# ")) {
            end++;
        }
        struct srv_page *pg = &s->pages[k++];
        d.self = pg->code;
        srv_buf b;
        srv_buf_heap(&b, PAGE_MAX);
        char title[CODE_MAX + 32];
        snprintf(title, sizeof title, "tokend reason code: %s", pg->code);
        page_head(&b, title);
        srv_buf_puts(&b, "<p class=\"nav\"><a href=\"./\">All tokend reason codes</a></p>\n");
        render(&b, &d, i, end, 1);
        page_tail(&b);
        if (b.overflow || b.p == NULL) {
            srv_buf_free(&b);
            rc = -1;
            break;
        }
        pg->html = b.p;
        pg->len = b.len;
    }
    if (rc == 0) {
        d.self = NULL;
        srv_buf b;
        srv_buf_heap(&b, PAGE_MAX);
        page_head(&b, "tokend reason codes");
        render(&b, &d, 0, first_section, 0);
        srv_buf list;
        srv_buf_heap(&list, PAGE_MAX);
        srv_buf_puts(&list, "<ul>\n");
        for (size_t i = 0; i < s->pages_len; i++) {
            srv_buf_puts(&list, "<li><a href=\"");
            srv_buf_html(&list, s->pages[i].code, strlen(s->pages[i].code));
            srv_buf_puts(&list, "\"><code>");
            srv_buf_html(&list, s->pages[i].code, strlen(s->pages[i].code));
            srv_buf_puts(&list, "</code></a></li>\n");
        }
        srv_buf_puts(&list, "</ul>\n");
        srv_buf_puts(&b, "<h2>Sections</h2>\n");
        if (!list.overflow && list.p != NULL) {
            srv_buf_put(&b, list.p, list.len);
        }
        page_tail(&b);
        if (b.overflow || b.p == NULL || list.overflow || list.p == NULL) {
            srv_buf_free(&b);
            srv_buf_free(&list);
            rc = -1;
        } else {
            s->errors_index = b.p;
            s->errors_index_len = b.len;
            s->errors_list = list.p;
            s->errors_list_len = list.len;
        }
    }
    free(d.lines);
    return rc;
}

void srv_pages_free(struct tkh_server *s)
{
    for (size_t i = 0; i < s->pages_len; i++) {
        free(s->pages[i].html);
    }
    free(s->pages);
    s->pages = NULL;
    s->pages_len = 0;
    free(s->errors_index);
    s->errors_index = NULL;
    free(s->errors_list);
    s->errors_list = NULL;
}

enum MHD_Result srv_handle_errors(srv_conn *st, struct MHD_Connection *c, const char *url)
{
    struct tkh_server *s = st->srv;
    if (strcmp(url, "/errors") == 0) {
        srv_header loc = {MHD_HTTP_HEADER_LOCATION, "/errors/"};
        return srv_respond(st, c, MHD_HTTP_MOVED_PERMANENTLY, NULL, NULL, 0, 1, SRV_CACHE_NONE, &loc, 1);
    }
    const char *code = url + 8; /* after "/errors/" */
    if (code[0] == '\0') {
        return srv_respond_html_static(st, c, MHD_HTTP_OK, s->errors_index, s->errors_index_len, SRV_CACHE_PUBLIC_300);
    }
    for (size_t i = 0; i < s->pages_len; i++) {
        if (s->pages[i].html != NULL && strcmp(code, s->pages[i].code) == 0) {
            return srv_respond_html_static(st, c, MHD_HTTP_OK, s->pages[i].html, s->pages[i].len, SRV_CACHE_PUBLIC_300);
        }
    }
    /* An unknown code (a typo, an old link): the styled page, naming what
     * was asked for, with every valid code. */
    st->error = "not_found";
    srv_buf b;
    srv_buf_heap(&b, PAGE_MAX);
    page_head(&b, "Unknown reason code");
    srv_buf_puts(&b, "<p class=\"nav\"><a href=\"./\">All tokend reason codes</a></p>\n"
                     "<h1>Unknown reason code</h1>\n<p>tokend has no reason code <code>");
    char shown[CODE_MAX + 4];
    srv_fact_copy(shown, sizeof shown, code);
    srv_buf_html(&b, shown, strlen(shown));
    srv_buf_puts(&b, "</code>. The reason codes are:</p>\n");
    srv_buf_put(&b, s->errors_list, s->errors_list_len);
    page_tail(&b);
    if (!b.overflow && b.p != NULL) {
        return srv_respond_html(st, c, MHD_HTTP_NOT_FOUND, b.p, b.len, SRV_CACHE_NO_STORE, NULL, NULL, 0);
    }
    srv_buf_free(&b);
    static const char nf[] = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                             "<title>Unknown reason code</title></head><body>"
                             "<p>tokend has no reason code by that name. See <a href=\"./\">all reason codes</a>.</p>"
                             "</body></html>\n";
    return srv_respond_html_static(st, c, MHD_HTTP_NOT_FOUND, nf, sizeof nf - 1, SRV_CACHE_NO_STORE);
}
