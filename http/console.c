/*
 * console.c — GET / (and /index.html): strata's web console, one page built into the
 * binary (http/console/index.html, embedded at build time as the page and its gzip form
 * by http/console/embed.cmake). Browsers that take gzip get the gzip form; every answer
 * has an ETag (XXH3 of the page) and Cache-Control: no-cache, so a reload revalidates
 * and gets 304 Not Modified while the binary is the same. The page is answered without
 * the token (it holds no data; it asks for the token when the API refuses it).
 */
#include "http/api.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

extern const unsigned char console_page[], console_page_gz[];
extern const size_t console_page_len, console_page_gz_len;

static char etag[24];
static pthread_once_t etag_once = PTHREAD_ONCE_INIT;

static void etag_make(void)
{
    snprintf(etag, sizeof etag, "\"%016llx\"", (unsigned long long)XXH3_64bits(console_page, console_page_len));
}

/* Whether an Accept-Encoding value takes gzip ("gzip", "gzip;q=0.8", not "gzip;q=0"). */
static bool takes_gzip(const char *ae)
{
    const char *p = ae ? strstr(ae, "gzip") : NULL;
    if (!p)
        return false;
    p += 4;
    while (*p == ' ')
        p++;
    if (strncmp(p, ";q=", 3) != 0)
        return true;
    return strtod(p + 3, NULL) > 0;
}

enum MHD_Result api_console_get(strata_server *s, struct MHD_Connection *c, request *rq,
                                const char *method)
{
    (void)rq;
    (void)method;
    pthread_once(&etag_once, etag_make);
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    const char *common[] = {"ETag", etag, "Cache-Control", "no-cache", "Vary", "Accept-Encoding",
                            NULL, NULL, NULL};
    if (inm && strstr(inm, etag))
        return reply_static(s, c, 304, NULL, 0, NULL, common);
    bool gz = takes_gzip(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding"));
    if (gz) {
        common[6] = "Content-Encoding";
        common[7] = "gzip";
    }
    return reply_static(s, c, 200, gz ? console_page_gz : console_page, gz ? console_page_gz_len : console_page_len,
                        "text/html; charset=utf-8", common);
}
