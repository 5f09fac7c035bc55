#include <png.h>
#include <string.h>

/* libpng's simplified write API (png_image_*) does its own setjmp/longjmp error handling and reports failures through
   image.message, so Swift, which cannot survive a longjmp, can call it. These wrappers keep the macro arithmetic
   (PNG_FORMAT_*, PNG_IMAGE_VERSION) on the C side. */
static inline int bm_png_write(const char *path, const void *pixels, png_uint_32 width, png_uint_32 height,
                               int channels, char *message, size_t message_len) {
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = width;
    image.height = height;
    image.format = channels == 1 ? PNG_FORMAT_GRAY : channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_RGBA;
    int ok = png_image_write_to_file(&image, path, 0, pixels, 0, NULL);
    if (!ok && message && message_len > 0) {
        strncpy(message, image.message, message_len - 1);
        message[message_len - 1] = 0;
    }
    png_image_free(&image);
    return ok;
}
