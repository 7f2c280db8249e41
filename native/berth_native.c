/*
 * berth's native door: the few Linux calls Node 20 lacks (mknod, xattrs on the link itself,
 * mount/umount2). Synchronous, path based, never following a final symlink where the call
 * allows it. Errors are thrown as Error objects with `code` (ENOENT, ...) and `errno`, like
 * node:fs. Loaded by src/archive/native.ts, which falls back to processes when it is missing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <node_api.h>
#include <uv.h>

#define PATH_CAP 4096

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  char msg[PATH_CAP + 128];
  const char *name = uv_err_name(-err);
  snprintf(msg, sizeof msg, "%s: %s, %s '%s'", name, strerror(err), syscall, path ? path : "");
  napi_value m, code, e, en, sc;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, m, &e);
  napi_create_int32(env, -err, &en);
  napi_set_named_property(env, e, "errno", en);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sc);
  napi_set_named_property(env, e, "syscall", sc);
  if (path) {
    napi_value p;
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &p);
    napi_set_named_property(env, e, "path", p);
  }
  napi_throw(env, e);
  return NULL;
}

static int get_str(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, buf, cap, &len) != napi_ok) return -1;
  if (len >= cap - 1) return -1;
  return 0;
}

#define ARGS(n)                                                        \
  size_t argc = n;                                                     \
  napi_value argv[n];                                                  \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);                \
  if (argc < n) {                                                      \
    napi_throw_type_error(env, NULL, "wrong number of arguments");     \
    return NULL;                                                       \
  }

#define STR(i, name)                                                   \
  char name[PATH_CAP];                                                 \
  if (get_str(env, argv[i], name, sizeof name) != 0) {                 \
    napi_throw_type_error(env, NULL, "expected a string below 4096 bytes"); \
    return NULL;                                                       \
  }

/* mknod(path, mode, major, minor) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(4);
  STR(0, path);
  uint32_t mode, maj, min;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &maj);
  napi_get_value_uint32(env, argv[3], &min);
  if (mknod(path, (mode_t)mode, makedev(maj, min)) != 0) return throw_errno(env, errno, "mknod", path);
  return NULL;
}

/* lsetxattr(path, name, value: Buffer, flags) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  ARGS(4);
  STR(0, path);
  STR(1, name);
  void *data = NULL;
  size_t len = 0;
  bool isbuf = false;
  napi_is_buffer(env, argv[2], &isbuf);
  if (!isbuf) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  napi_get_buffer_info(env, argv[2], &data, &len);
  int32_t flags = 0;
  napi_get_value_int32(env, argv[3], &flags);
  if (lsetxattr(path, name, data, len, flags) != 0) return throw_errno(env, errno, "lsetxattr", path);
  return NULL;
}

/* lgetxattr(path, name) -> Buffer | null (null when the attribute is absent) */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  STR(0, path);
  STR(1, name);
  char buf[65536];
  ssize_t n = lgetxattr(path, name, buf, sizeof buf);
  napi_value out;
  if (n < 0) {
    if (errno == ENODATA) {
      napi_get_null(env, &out);
      return out;
    }
    return throw_errno(env, errno, "lgetxattr", path);
  }
  void *dst;
  napi_create_buffer_copy(env, (size_t)n, buf, &dst, &out);
  return out;
}

/* llistxattr(path) -> string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  ARGS(1);
  STR(0, path);
  char buf[65536];
  ssize_t n = llistxattr(path, buf, sizeof buf);
  if (n < 0) return throw_errno(env, errno, "llistxattr", path);
  napi_value arr;
  napi_create_array(env, &arr);
  uint32_t i = 0;
  for (ssize_t off = 0; off < n;) {
    size_t l = strnlen(buf + off, (size_t)(n - off));
    napi_value s;
    napi_create_string_utf8(env, buf + off, l, &s);
    napi_set_element(env, arr, i++, s);
    off += (ssize_t)l + 1;
  }
  return arr;
}

/* mount(source, target, fstype, flags, data) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  ARGS(5);
  STR(0, source);
  STR(1, target);
  STR(2, fstype);
  uint32_t flags;
  napi_get_value_uint32(env, argv[3], &flags);
  char data[PATH_CAP];
  if (get_str(env, argv[4], data, sizeof data) != 0) {
    napi_throw_type_error(env, NULL, "mount data must be a string below 4096 bytes");
    return NULL;
  }
  if (mount(source, target, fstype, flags, data) != 0) return throw_errno(env, errno, "mount", target);
  return NULL;
}

/* umount2(target, flags) */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  ARGS(2);
  STR(0, target);
  int32_t flags;
  napi_get_value_int32(env, argv[1], &flags);
  if (umount2(target, flags) != 0) return throw_errno(env, errno, "umount2", target);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
    {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
    {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
