#include <zlib.h>
// deflateInit2/inflateInit2 are macros; Swift sees these instead.
static inline int bm_deflate_init(z_stream *s, int level, int window_bits) {
    return deflateInit2(s, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
static inline int bm_inflate_init(z_stream *s, int window_bits) { return inflateInit2(s, window_bits); }
