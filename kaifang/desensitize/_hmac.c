/* HMAC-SHA256 pseudonyms and position masks over an Arrow string array's buffers
 * (kaifang.desensitize.mask).
 *
 * The same value as mask.pseudonym(): the first 16 hex characters of HMAC-SHA256(secret, value),
 * for every value of a (large_)string array that is valid and not empty; null and empty values
 * give an empty output slot (their validity comes from the input bitmap, on the Python side).
 *
 * RFC 2104 with precomputed midstates: the 64-byte inner and outer key blocks are absorbed once
 * per call, and each value then costs the compressions of its own bytes plus one for the outer
 * digest (two in all for values up to 55 bytes). OpenSSL's SHA-256 uses the SHA extensions
 * where the CPU has them. The GIL is released while hashing, so Python threads can each take
 * a range of the array.
 *
 * mask() is mask.positional() over a whole column (characters are code points of the UTF-8).
 */
#define PY_SSIZE_T_CLEAN
#define OPENSSL_SUPPRESS_DEPRECATED
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#define HEX 16
#define BLOCK 64

static const char DIGITS[] = "0123456789abcdef";

static inline int64_t offset_at(const void *offsets, int large, Py_ssize_t i)
{
    return large ? ((const int64_t *)offsets)[i] : (int64_t)((const int32_t *)offsets)[i];
}

static inline int is_valid(const uint8_t *validity, Py_ssize_t i)
{
    return validity == NULL || (validity[i >> 3] >> (i & 7)) & 1;
}

/* check that buffer `b` holds at least `bytes` bytes */
static int big_enough(Py_buffer *b, Py_ssize_t bytes, const char *what)
{
    if (b->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s buffer too small (%zd < %zd bytes)", what, b->len, bytes);
        return 0;
    }
    return 1;
}

PyDoc_STRVAR(offsets_doc,
    "offsets(offsets, validity, large, first, n, out) -> total bytes\n\n"
    "Output offsets (int32) of the n values from index `first`: 16 bytes per valid non-empty\n"
    "value. out[first..first+n] are written (out[:first] is zeroed); `validity` may be None.");

static PyObject *offsets(PyObject *self, PyObject *args)
{
    Py_buffer in = {0}, valid = {0}, out = {0};
    PyObject *validity;
    int large;
    Py_ssize_t first, n;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*Opnnw*", &in, &validity, &large, &first, &n, &out))
        return NULL;
    if (validity != Py_None && PyObject_GetBuffer(validity, &valid, PyBUF_SIMPLE) < 0)
        goto done;
    if (first < 0 || n < 0)
        goto bad_range;
    if (!big_enough(&in, (first + n + 1) * (large ? 8 : 4), "offsets") ||
        !big_enough(&out, (first + n + 1) * 4, "output offsets") ||
        (valid.buf && !big_enough(&valid, (first + n + 7) / 8, "validity")))
        goto done;
    if ((int64_t)n * HEX > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many values for int32 offsets");
        goto done;
    }
    {
        int32_t *o = (int32_t *)out.buf;
        const uint8_t *v = valid.buf;
        int32_t total = 0;
        memset(o, 0, (size_t)first * sizeof(int32_t));
        o[first] = 0;
        for (Py_ssize_t i = first; i < first + n; i++) {
            if (is_valid(v, i) && offset_at(in.buf, large, i + 1) > offset_at(in.buf, large, i))
                total += HEX;
            o[i + 1] = total;
        }
        result = PyLong_FromLong(total);
    }
    goto done;
bad_range:
    PyErr_SetString(PyExc_ValueError, "negative index");
done:
    PyBuffer_Release(&in);
    if (valid.buf)
        PyBuffer_Release(&valid);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(hmac16_doc,
    "hmac16(ipad, opad, offsets, data, large, out_offsets, out, start, stop)\n\n"
    "Write the 16-hex-character HMAC-SHA256 of values start..stop (absolute indices) at the\n"
    "positions `out_offsets` (from offsets()) gives; values with an empty output slot are\n"
    "skipped. ipad and opad are the 64-byte key blocks of RFC 2104. Releases the GIL.");

static PyObject *hmac16(PyObject *self, PyObject *args)
{
    Py_buffer ipad = {0}, opad = {0}, in = {0}, data = {0}, out_offsets = {0}, out = {0};
    int large;
    Py_ssize_t start, stop;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*py*w*nn", &ipad, &opad, &in, &data, &large, &out_offsets,
                          &out, &start, &stop))
        return NULL;
    if (ipad.len != BLOCK || opad.len != BLOCK) {
        PyErr_SetString(PyExc_ValueError, "the key blocks must be 64 bytes");
        goto done;
    }
    if (start < 0 || stop < start) {
        PyErr_SetString(PyExc_ValueError, "bad range");
        goto done;
    }
    if (!big_enough(&in, (stop + 1) * (large ? 8 : 4), "offsets") ||
        !big_enough(&out_offsets, (stop + 1) * 4, "output offsets"))
        goto done;
    {
        const int32_t *oo = (const int32_t *)out_offsets.buf;
        /* bounds of everything this call reads and writes, checked before the GIL is let go */
        for (Py_ssize_t i = start; i < stop; i++) {
            if (oo[i + 1] == oo[i])
                continue;
            int64_t s = offset_at(in.buf, large, i), e = offset_at(in.buf, large, i + 1);
            if (s < 0 || e < s || e > data.len || oo[i + 1] - oo[i] != HEX || oo[i] < 0 ||
                oo[i + 1] > out.len) {
                PyErr_SetString(PyExc_ValueError, "offsets out of bounds");
                goto done;
            }
        }
        SHA256_CTX inner, outer, ctx;
        SHA256_Init(&inner);
        SHA256_Update(&inner, ipad.buf, BLOCK);
        SHA256_Init(&outer);
        SHA256_Update(&outer, opad.buf, BLOCK);
        const uint8_t *bytes = data.buf;
        char *dest = out.buf;
        Py_BEGIN_ALLOW_THREADS
        unsigned char digest[SHA256_DIGEST_LENGTH];
        for (Py_ssize_t i = start; i < stop; i++) {
            if (oo[i + 1] == oo[i])
                continue;
            int64_t s = offset_at(in.buf, large, i), e = offset_at(in.buf, large, i + 1);
            ctx = inner;
            SHA256_Update(&ctx, bytes + s, (size_t)(e - s));
            SHA256_Final(digest, &ctx);
            ctx = outer;
            SHA256_Update(&ctx, digest, SHA256_DIGEST_LENGTH);
            SHA256_Final(digest, &ctx);
            char *d = dest + oo[i];
            for (int k = 0; k < HEX / 2; k++) {
                d[2 * k] = DIGITS[digest[k] >> 4];
                d[2 * k + 1] = DIGITS[digest[k] & 15];
            }
        }
        Py_END_ALLOW_THREADS
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&ipad);
    PyBuffer_Release(&opad);
    PyBuffer_Release(&in);
    PyBuffer_Release(&data);
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(mask_doc,
    "mask(offsets, data, validity, large, first, n, keep_first, keep_last, width, char,\n"
    "     out_offsets, out) -> bytes written\n\n"
    "mask.positional() of the n values from index `first` (width 0: none). out_offsets (int32)\n"
    "gets first+n+1 entries (the first `first` zero); `out` must hold at least\n"
    "len(data) * (1 + len(char)) + n * width * len(char) bytes. Null and empty values give\n"
    "empty slots; `validity` may be None. Releases the GIL.");

static PyObject *mask(PyObject *self, PyObject *args)
{
    Py_buffer in = {0}, data = {0}, valid = {0}, chr = {0}, out_offsets = {0}, out = {0};
    PyObject *validity;
    int large;
    Py_ssize_t first, n, keep_first, keep_last, width;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*Opnnnnny*w*w*", &in, &data, &validity, &large, &first, &n,
                          &keep_first, &keep_last, &width, &chr, &out_offsets, &out))
        return NULL;
    if (validity != Py_None && PyObject_GetBuffer(validity, &valid, PyBUF_SIMPLE) < 0)
        goto done;
    if (first < 0 || n < 0 || keep_first < 0 || keep_last < 0 || width < 0) {
        PyErr_SetString(PyExc_ValueError, "negative argument");
        goto done;
    }
    if (!big_enough(&in, (first + n + 1) * (large ? 8 : 4), "offsets") ||
        !big_enough(&out_offsets, (first + n + 1) * 4, "output offsets") ||
        (valid.buf && !big_enough(&valid, (first + n + 7) / 8, "validity")) ||
        !big_enough(&out, data.len * (1 + chr.len) + n * width * chr.len, "output"))
        goto done;
    if (out.len > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "output too large for int32 offsets");
        goto done;
    }
    for (Py_ssize_t i = first; i < first + n; i++) {
        int64_t s = offset_at(in.buf, large, i), e = offset_at(in.buf, large, i + 1);
        if (s < 0 || e < s || e > data.len) {
            PyErr_SetString(PyExc_ValueError, "offsets out of bounds");
            goto done;
        }
    }
    {
        const uint8_t *b = data.buf, *v = valid.buf, *c = chr.buf;
        const Py_ssize_t clen = chr.len;
        uint8_t *o = out.buf;
        int32_t *oo = out_offsets.buf;
        int64_t pos = 0;
        Py_BEGIN_ALLOW_THREADS
        memset(oo, 0, (size_t)(first + 1) * sizeof(int32_t));
        for (Py_ssize_t i = first; i < first + n; i++) {
            int64_t s = offset_at(in.buf, large, i), e = offset_at(in.buf, large, i + 1);
            if (e > s && is_valid(v, i)) {
                int64_t chars = 0;
                for (int64_t k = s; k < e; k++)
                    chars += (b[k] & 0xC0) != 0x80;
                int64_t f = keep_first, l = keep_last;
                if (f + l >= chars) { /* short value: fewer than half of its characters */
                    int64_t reveal = (chars > 0 ? chars - 1 : 0) / 2;
                    f = f < reveal ? f : reveal;
                    l = l < reveal - f ? l : reveal - f;
                }
                int64_t head = s, tail = e;
                for (int64_t k = 0; k < f && head < e; k++) {
                    head++;
                    while (head < e && (b[head] & 0xC0) == 0x80)
                        head++;
                }
                for (int64_t k = 0; k < l && tail > head; k++) {
                    tail--;
                    while (tail > head && (b[tail] & 0xC0) == 0x80)
                        tail--;
                }
                int64_t run = width > 0 ? width : chars - f - l;
                memcpy(o + pos, b + s, (size_t)(head - s));
                pos += head - s;
                if (clen == 1) {
                    memset(o + pos, c[0], (size_t)run);
                    pos += run;
                } else {
                    for (int64_t k = 0; k < run; k++, pos += clen)
                        memcpy(o + pos, c, (size_t)clen);
                }
                memcpy(o + pos, b + tail, (size_t)(e - tail));
                pos += e - tail;
            }
            oo[i + 1] = (int32_t)pos;
        }
        Py_END_ALLOW_THREADS
        result = PyLong_FromLongLong(pos);
    }
done:
    PyBuffer_Release(&in);
    PyBuffer_Release(&data);
    if (valid.buf)
        PyBuffer_Release(&valid);
    PyBuffer_Release(&chr);
    PyBuffer_Release(&out_offsets);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"offsets", offsets, METH_VARARGS, offsets_doc},
    {"hmac16", hmac16, METH_VARARGS, hmac16_doc},
    {"mask", mask, METH_VARARGS, mask_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hmac", "HMAC-SHA256 pseudonyms and position masks over Arrow string buffers.", -1, methods,
};

PyMODINIT_FUNC PyInit__hmac(void)
{
    return PyModule_Create(&module);
}
