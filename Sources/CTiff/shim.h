#include <tiffio.h>
#include <stdio.h>
#include <stdarg.h>

/* libtiff's TIFFSetField/TIFFGetField are C variadics, which Swift cannot call: typed wrappers. */
static inline int bm_tiff_set_u32(TIFF *t, uint32_t tag, uint32_t v) { return TIFFSetField(t, tag, v); }
static inline int bm_tiff_set_u16(TIFF *t, uint32_t tag, uint16_t v) { return TIFFSetField(t, tag, (int)v); }
static inline int bm_tiff_set_str(TIFF *t, uint32_t tag, const char *v) { return TIFFSetField(t, tag, v); }
static inline int bm_tiff_get_u32(TIFF *t, uint32_t tag, uint32_t *v) { return TIFFGetField(t, tag, v); }
static inline int bm_tiff_get_u16(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetField(t, tag, v); }
static inline int bm_tiff_get_u16_defaulted(TIFF *t, uint32_t tag, uint16_t *v) { return TIFFGetFieldDefaulted(t, tag, v); }

/* libtiff prints errors to stderr by default; keep the last message per thread so Swift can put it in an error. */
#define BM_TIFF_ERR_LEN 512
static inline char *bm_tiff_error_buffer(void) { static __thread char b[BM_TIFF_ERR_LEN]; return b; }
static inline void bm_tiff_error_handler(const char *module, const char *fmt, va_list ap) {
    char *b = bm_tiff_error_buffer();
    int n = snprintf(b, BM_TIFF_ERR_LEN, "%s: ", module ? module : "libtiff");
    if (n < 0 || n >= BM_TIFF_ERR_LEN) n = 0;
    vsnprintf(b + n, BM_TIFF_ERR_LEN - n, fmt, ap);
}
static inline void bm_tiff_quiet_warning(const char *module, const char *fmt, va_list ap) { (void)module; (void)fmt; (void)ap; }
static inline void bm_tiff_install_handlers(void) {
    TIFFSetErrorHandler(bm_tiff_error_handler);
    TIFFSetWarningHandler(bm_tiff_quiet_warning);
}
static inline const char *bm_tiff_error(void) { return bm_tiff_error_buffer(); }
static inline void bm_tiff_clear_error(void) { bm_tiff_error_buffer()[0] = 0; }
