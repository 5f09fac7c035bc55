#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

/* libpng reports errors by longjmp to a setjmp the caller made; Swift cannot survive a longjmp through its frames, so
   the whole write happens here in C, where setjmp is legal. The report's images are written with zlib level 1: they
   are screen-sized and many, and level 1 is ~3x faster than the default for files ~15% larger. */

static void bm_png_error(png_structp png, png_const_charp msg) {
    char *buf = (char *)png_get_error_ptr(png);
    if (buf) { strncpy(buf, msg, 255); buf[255] = 0; }
    png_longjmp(png, 1);
}
static void bm_png_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

/* Writes width x height pixels of `channels` (1 grey, 3 RGB, 4 RGBA) 8-bit samples, rows packed, to `path`.
   Returns 1 on success; on failure 0 with the reason in `message` (256 bytes). */
static inline int bm_png_write(const char *path, const unsigned char *pixels, png_uint_32 width, png_uint_32 height,
                               int channels, char *message) {
    message[0] = 0;
    FILE *f = fopen(path, "wb");
    if (!f) { snprintf(message, 256, "cannot open for writing"); return 0; }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, message, bm_png_error, bm_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(message, 256, "out of memory");
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return 0;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return 0;
    }
    png_init_io(png, f);
    png_set_compression_level(png, 1);
    int type = channels == 1 ? PNG_COLOR_TYPE_GRAY : channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA;
    png_set_IHDR(png, info, width, height, 8, type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (png_uint_32 y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * width * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) { snprintf(message, 256, "write failed (disk full?)"); return 0; }
    return 1;
}
