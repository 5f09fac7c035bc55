#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

/* curl_easy_setopt/getinfo are C variadics, which Swift cannot call: typed wrappers, plus growable buffers that
   the write and header callbacks append to (so no Swift closure crosses the C boundary). */
typedef struct { unsigned char *data; size_t len, cap; } bm_buffer;

static inline void bm_buffer_reset(bm_buffer *b) { b->len = 0; }
static inline void bm_buffer_free(bm_buffer *b) { free(b->data); b->data = NULL; b->len = b->cap = 0; }

static inline size_t bm_buffer_append(char *p, size_t size, size_t n, void *ud) {
    bm_buffer *b = (bm_buffer *)ud;
    size_t add = size * n;
    if (b->len + add > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + add) cap *= 2;
        unsigned char *d = (unsigned char *)realloc(b->data, cap);
        if (!d) return 0;  /* makes curl fail with CURLE_WRITE_ERROR */
        b->data = d; b->cap = cap;
    }
    memcpy(b->data + b->len, p, add);
    b->len += add;
    return add;
}

static inline CURLcode bm_set_long(CURL *c, CURLoption o, long v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode bm_set_off(CURL *c, CURLoption o, curl_off_t v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode bm_set_str(CURL *c, CURLoption o, const char *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode bm_set_ptr(CURL *c, CURLoption o, void *v) { return curl_easy_setopt(c, o, v); }
static inline CURLcode bm_set_body_buffer(CURL *c, bm_buffer *b) {
    CURLcode r = curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bm_buffer_append);
    return r ? r : curl_easy_setopt(c, CURLOPT_WRITEDATA, (void *)b);
}
static inline CURLcode bm_set_header_buffer(CURL *c, bm_buffer *b) {
    CURLcode r = curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, bm_buffer_append);
    return r ? r : curl_easy_setopt(c, CURLOPT_HEADERDATA, (void *)b);
}
static inline CURLcode bm_get_long(CURL *c, CURLINFO i, long *v) { return curl_easy_getinfo(c, i, v); }
static inline CURLcode bm_get_off(CURL *c, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(c, i, v); }
