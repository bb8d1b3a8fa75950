/* RequestHandler.set_cookie and clear_cookie in C, with upstream's
 * semantics (tornado 6.6.1; see handler.c for the design).
 *
 * What is C and what stays Python.  Tornado's own logic runs here: the
 * binding of the arguments, escape.native_str of name and value, the
 * character checks with their ValueError / http.cookies.CookieError
 * messages, hasattr(self, "_new_cookie"), the order of the jar operations,
 * the truthiness tests of each attribute, the expiry date (expires_days,
 * httputil.format_timestamp) and clear_cookie's TypeError.  The cookie
 * objects are the standard library's: self._new_cookie is an
 * http.cookies.SimpleCookie made by calling the class, and every store
 * into it or into its Morsels goes through their own __setitem__
 * (PyObject_SetItem), so the objects apps and flush() read, the quoting of
 * the value, the attribute names Morsel accepts and the Set-Cookie text
 * OutputString() writes are whatever the running Python's http.cookies
 * does -- which differs between Python releases (control-character
 * checks, "partitioned").
 *
 * Taken by upstream's own function instead (orig[]): extra keyword
 * arguments (the deprecated case-insensitive attributes, with their
 * DeprecationWarning), a name or value other than str/bytes, an attribute
 * that is not str/None where upstream runs a regex on it, bytes that are
 * not UTF-8, and arguments that do not bind.
 */
#include "common.h"

/* the datetime structs and field macros only: no capsule import (and no
 * static PyDateTimeAPI pointer in this file), the type is checked by
 * identity with datetime.datetime from _web_handler_setup */
#define _PY_DATETIME_IMPL
#include <datetime.h>
#undef _PY_DATETIME_IMPL

#include "state.h"
#include "web/web.h"
#include "web/handler.h"

static PyObject *
call_orig(tc_web_state *ws, int hook, PyObject *self, PyObject *const *args, Py_ssize_t nargs,
          PyObject *kwnames)
{
    return tc_web_hook_call(self, ws->h.orig[hook], 1, args, nargs, kwnames);
}

/* escape.native_str(v) for str (itself) and bytes (strict UTF-8): a new
 * reference; NULL without an exception for anything else (and for bytes
 * that do not decode, whose error upstream's function raises). */
static PyObject *
native_str(PyObject *v)
{
    if (PyUnicode_Check(v)) {
        return Py_NewRef(v);
    }
    if (PyBytes_Check(v)) {
        PyObject *s = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), NULL);
        if (s == NULL) {
            PyErr_Clear();
        }
        return s;
    }
    return NULL;
}

/* re.search(r"[\x00-\x20]", s) (semicolon 0) or r"[\x00-\x20\x3b\x7f]"
 * (semicolon 1) finds something in the str s */
static int
has_bad_char(PyObject *s, int semicolon)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c <= 0x20 || (semicolon && (c == 0x3b || c == 0x7f))) {
            return 1;
        }
    }
    return 0;
}

/* http.cookies.<name>, looked up when used, as upstream's code does */
static PyObject *
cookies_attr(tc_web_cookie_state *ck, PyObject *name)
{
    return PyObject_GetAttr(ck->cookies_module, name);
}

/* raise http.cookies.CookieError(f"Invalid cookie attribute {attr}={value!r}
 * for cookie {name!r}"); always NULL */
static PyObject *
attribute_error(tc_web_cookie_state *ck, const char *attr, PyObject *value, PyObject *name)
{
    PyObject *cls = cookies_attr(ck, ck->s_CookieError), *msg = NULL;
    if (cls != NULL) {
        msg = PyUnicode_FromFormat("Invalid cookie attribute %s=%R for cookie %R", attr, value,
                                   name);
    }
    if (msg != NULL) {
        PyErr_SetObject(cls, msg);
    }
    Py_XDECREF(cls);
    Py_XDECREF(msg);
    return NULL;
}

static const char *const wdays[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Monday 0 ... Sunday 6, of a proleptic Gregorian date */
static int
weekday(int y, int m, int d)
{
    /* days since 1970-01-01 (a Thursday), by the civil-from-days inverse */
    long long yy = y - (m <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    long long w = (days + 3) % 7; /* 1970-01-01: Thursday, 3 */
    return (int)(w < 0 ? w + 7 : w);
}

/* httputil.format_timestamp(ts), new reference.  For a datetime.datetime
 * (the exact type) that is naive or in datetime.timezone.utc, what
 * calendar.timegm(ts.utctimetuple()) then email.utils.formatdate(...,
 * usegmt=True) give is the datetime's own fields to the second, written
 * here; anything else goes to the function tornado.httputil has now. */
static PyObject *
format_timestamp(tc_web_state *ws, PyObject *ts)
{
    tc_web_handler_state *hs = &ws->h;
    tc_web_cookie_state *ck = &hs->ck;
    PyObject *f = PyObject_GetAttr(ws->httputil_module, ck->s_format_timestamp);
    if (f == NULL) {
        return NULL;
    }
    if (f == hs->format_timestamp && Py_IS_TYPE(ts, (PyTypeObject *)hs->datetime)) {
        PyDateTime_DateTime *dt = (PyDateTime_DateTime *)ts;
        PyObject *tz = dt->hastzinfo ? dt->tzinfo : Py_None; /* borrowed */
        int y = PyDateTime_GET_YEAR(ts), mo = PyDateTime_GET_MONTH(ts),
            d = PyDateTime_GET_DAY(ts);
        if ((tz == Py_None || tz == ck->utc) && y >= 1970 && y <= 9999) {
            char buf[64];
            Py_DECREF(f);
            snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                     wdays[weekday(y, mo, d)], d, months[mo - 1], y,
                     PyDateTime_DATE_GET_HOUR(ts), PyDateTime_DATE_GET_MINUTE(ts),
                     PyDateTime_DATE_GET_SECOND(ts));
            return PyUnicode_FromString(buf);
        }
    }
    PyObject *r = PyObject_CallOneArg(f, ts);
    Py_DECREF(f);
    return r;
}

/* datetime.datetime.now(datetime.UTC) +/- datetime.timedelta(days=days),
 * through tornado.web's global `datetime` as upstream's code reads it */
static PyObject *
now_shifted(tc_web_state *ws, PyObject *days, int subtract)
{
    tc_web_handler_state *hs = &ws->h;
    tc_web_cookie_state *ck = &hs->ck;
    PyObject *mod, *cls = NULL, *utc = NULL, *now = NULL, *td = NULL, *tdc = NULL, *r = NULL;
    mod = PyDict_GetItemWithError(hs->web_globals, ck->s_datetime); /* borrowed */
    if (mod == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_NameError, "name 'datetime' is not defined");
        }
        return NULL;
    }
    Py_INCREF(mod);
    cls = PyObject_GetAttr(mod, ck->s_datetime);
    utc = cls ? PyObject_GetAttr(mod, ck->s_UTC) : NULL;
    if (utc == NULL) {
        goto done;
    }
    {
        PyObject *nargs[2] = {cls, utc};
        now = PyObject_VectorcallMethod(ck->s_now, nargs, 2,
                                        NULL);
    }
    tdc = now ? PyObject_GetAttr(mod, ck->s_timedelta) : NULL;
    if (tdc == NULL) {
        goto done;
    }
    {
        PyObject *targs[1] = {days};
        td = PyObject_Vectorcall(tdc, targs, 0, ck->kw_days);
    }
    if (td == NULL) {
        goto done;
    }
    r = subtract ? PyNumber_Subtract(now, td) : PyNumber_Add(now, td);
done:
    Py_DECREF(mod);
    Py_XDECREF(cls);
    Py_XDECREF(utc);
    Py_XDECREF(now);
    Py_XDECREF(tdc);
    Py_XDECREF(td);
    return r;
}

/* morsel[key] = value (Morsel.__setitem__) */
static int
morsel_set(PyObject *morsel, PyObject *key, PyObject *value)
{
    return PyObject_SetItem(morsel, key, value);
}

/* `if v:` of an optional argument (NULL: its default, false) */
static int
truthy(PyObject *v)
{
    return v == NULL ? 0 : PyObject_IsTrue(v);
}

enum {
    SC_NAME, SC_VALUE, SC_DOMAIN, SC_EXPIRES, SC_PATH, SC_EXPIRES_DAYS, /* positional too */
    SC_MAX_AGE, SC_HTTPONLY, SC_SECURE, SC_SAMESITE,                     /* keyword-only */
    SC_COUNT
};
static const char *const names_set_cookie[SC_COUNT] = {
    "name",    "value",   "domain",   "expires", "path", "expires_days",
    "max_age", "httponly", "secure", "samesite",
};

/* set_cookie(self, name, value, domain=None, expires=None, path="/",
 *            expires_days=None, *, max_age=None, httponly=False,
 *            secure=False, samesite=None, **kwargs) */
PyObject *
tc_web_set_cookie_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    tc_web_cookie_state *ck = &hs->ck;
    PyObject *a[SC_COUNT], *name = NULL, *value = NULL, *jar = NULL, *morsel = NULL;
    PyObject *expires = NULL, *v = NULL, *r = NULL;
    PyObject *path;
    int k;
    /* six positional parameters, four keyword-only; **kwargs (a keyword
     * that is none of them) and binding errors: upstream's function */
    if (nargs > SC_MAX_AGE || tc_web_bind(names_set_cookie, SC_COUNT, 2, args, nargs, kwnames, a)) {
        return call_orig(ws, TC_H_SET_COOKIE, self, args, nargs, kwnames);
    }
    path = a[SC_PATH] ? a[SC_PATH] : ck->s_slash;
    {
        /* re.search on these needs a str (or None: skipped) */
        PyObject *attrs[3] = {a[SC_DOMAIN], path, a[SC_SAMESITE]};
        for (int i = 0; i < 3; i++) {
            if (attrs[i] != NULL && attrs[i] != Py_None && !PyUnicode_Check(attrs[i])) {
                return call_orig(ws, TC_H_SET_COOKIE, self, args, nargs, kwnames);
            }
        }
    }
    /* name = escape.native_str(name); value = escape.native_str(value) */
    name = native_str(a[SC_NAME]);
    value = name ? native_str(a[SC_VALUE]) : NULL;
    if (value == NULL) {
        Py_XDECREF(name);
        return call_orig(ws, TC_H_SET_COOKIE, self, args, nargs, kwnames);
    }
    if (has_bad_char(value, 0)) {
        PyErr_Format(PyExc_ValueError, "Invalid cookie %R: %R", name, value);
        goto done;
    }
    {
        static const char *const attr_names[4] = {"name", "domain", "path", "samesite"};
        PyObject *attrs[4] = {name, a[SC_DOMAIN], path, a[SC_SAMESITE]};
        for (int i = 0; i < 4; i++) {
            if (attrs[i] != NULL && attrs[i] != Py_None && has_bad_char(attrs[i], 1)) {
                attribute_error(ck, attr_names[i], attrs[i], name);
                goto done;
            }
        }
    }
    /* if not hasattr(self, "_new_cookie"):
     *     self._new_cookie = http.cookies.SimpleCookie() */
    k = tc_web_has_attr(self, hs->s_new_cookie);
    if (k < 0) {
        goto done;
    }
    if (k == 0) {
        PyObject *cls = cookies_attr(ck, ck->s_SimpleCookie);
        jar = cls ? PyObject_CallNoArgs(cls) : NULL;
        Py_XDECREF(cls);
        if (jar == NULL || PyObject_SetAttr(self, hs->s_new_cookie, jar) < 0) {
            goto done;
        }
        Py_CLEAR(jar);
    }
    /* if name in self._new_cookie: del self._new_cookie[name] */
    jar = PyObject_GetAttr(self, hs->s_new_cookie);
    k = jar ? PySequence_Contains(jar, name) : -1;
    Py_CLEAR(jar);
    if (k < 0) {
        goto done;
    }
    if (k) {
        jar = PyObject_GetAttr(self, hs->s_new_cookie);
        if (jar == NULL || PyObject_DelItem(jar, name) < 0) {
            goto done;
        }
        Py_CLEAR(jar);
    }
    /* self._new_cookie[name] = value; morsel = self._new_cookie[name] */
    jar = PyObject_GetAttr(self, hs->s_new_cookie);
    if (jar == NULL || PyObject_SetItem(jar, name, value) < 0) {
        goto done;
    }
    Py_CLEAR(jar);
    jar = PyObject_GetAttr(self, hs->s_new_cookie);
    morsel = jar ? PyObject_GetItem(jar, name) : NULL;
    if (morsel == NULL) {
        goto done;
    }
    /* if domain: morsel["domain"] = domain */
    if ((k = truthy(a[SC_DOMAIN])) < 0 || (k && morsel_set(morsel, ck->s_domain, a[SC_DOMAIN]) < 0)) {
        goto done;
    }
    /* if expires_days is not None and not expires: expires = now(UTC) + days */
    expires = Py_XNewRef(a[SC_EXPIRES]);
    if (a[SC_EXPIRES_DAYS] != NULL && a[SC_EXPIRES_DAYS] != Py_None) {
        if ((k = truthy(expires)) < 0) {
            goto done;
        }
        if (!k) {
            Py_XSETREF(expires, now_shifted(ws, a[SC_EXPIRES_DAYS], 0));
            if (expires == NULL) {
                goto done;
            }
        }
    }
    /* if expires: morsel["expires"] = httputil.format_timestamp(expires) */
    if ((k = truthy(expires)) < 0) {
        goto done;
    }
    if (k) {
        v = format_timestamp(ws, expires);
        if (v == NULL || morsel_set(morsel, ck->s_expires, v) < 0) {
            goto done;
        }
        Py_CLEAR(v);
    }
    /* if path: morsel["path"] = path */
    if ((k = PyObject_IsTrue(path)) < 0 || (k && morsel_set(morsel, ck->s_path, path) < 0)) {
        goto done;
    }
    /* if max_age: morsel["max-age"] = str(int(max_age)) */
    if ((k = truthy(a[SC_MAX_AGE])) < 0) {
        goto done;
    }
    if (k) {
        PyObject *n = PyNumber_Long(a[SC_MAX_AGE]);
        v = n ? PyObject_Str(n) : NULL;
        Py_XDECREF(n);
        if (v == NULL || morsel_set(morsel, ck->s_max_age, v) < 0) {
            goto done;
        }
        Py_CLEAR(v);
    }
    /* if httponly: morsel["httponly"] = True; the same for secure;
     * if samesite: morsel["samesite"] = samesite */
    if ((k = truthy(a[SC_HTTPONLY])) < 0 || (k && morsel_set(morsel, ck->s_httponly, Py_True) < 0)) {
        goto done;
    }
    if ((k = truthy(a[SC_SECURE])) < 0 || (k && morsel_set(morsel, ck->s_secure, Py_True) < 0)) {
        goto done;
    }
    if ((k = truthy(a[SC_SAMESITE])) < 0 ||
        (k && morsel_set(morsel, ck->s_samesite, a[SC_SAMESITE]) < 0)) {
        goto done;
    }
    r = Py_NewRef(Py_None);
done:
    Py_XDECREF(name);
    Py_XDECREF(value);
    Py_XDECREF(jar);
    Py_XDECREF(morsel);
    Py_XDECREF(expires);
    Py_XDECREF(v);
    return r;
}

/* clear_cookie(self, name, **kwargs) */
PyObject *
tc_web_clear_cookie_impl(tc_web_state *ws, PyObject *self, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames)
{
    tc_web_handler_state *hs = &ws->h;
    tc_web_cookie_state *ck = &hs->ck;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *expires, *knames = NULL, *r = NULL;
    /* the call below is set_cookie(name, value="", expires=..., **kwargs),
     * its arguments in cargs[] */
    if (nargs != 1 || nkw > 8) {
        return call_orig(ws, TC_H_CLEAR_COOKIE, self, args, nargs, kwnames);
    }
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *kw = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(kw, "name") == 0 ||
            PyUnicode_CompareWithASCIIString(kw, "value") == 0 ||
            PyUnicode_CompareWithASCIIString(kw, "expires") == 0 ||
            PyUnicode_CompareWithASCIIString(kw, "max_age") == 0) {
            /* its TypeError, or Python's for a repeated argument */
            return call_orig(ws, TC_H_CLEAR_COOKIE, self, args, nargs, kwnames);
        }
    }
    /* expires = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=365) */
    expires = now_shifted(ws, ck->int_365, 1);
    if (expires == NULL) {
        return NULL;
    }
    /* self.set_cookie(name, value="", expires=expires, **kwargs) */
    if (nkw == 0) {
        knames = Py_NewRef(ck->kw_value_expires);
    } else {
        PyObject *extra = PyTuple_GetSlice(kwnames, 0, nkw);
        knames = extra ? PySequence_Concat(ck->kw_value_expires, extra) : NULL;
        Py_XDECREF(extra);
        if (knames == NULL) {
            goto done;
        }
    }
    {
        PyObject *cargs[11] = {args[0], ws->s_empty, expires};
        for (Py_ssize_t i = 0; i < nkw; i++) {
            cargs[3 + i] = args[1 + i];
        }
        PyObject *callable = NULL;
        int unbound = 0;
        int k = tc_web_hook_resolve(ws, self, TC_H_SET_COOKIE, &callable, &unbound);
        if (k < 0) {
            goto done;
        }
        if (k == 1) {
            r = tc_web_set_cookie_impl(ws, self, cargs, 1, knames);
        } else {
            r = tc_web_hook_call(self, callable, unbound, cargs, 1, knames);
            Py_DECREF(callable);
        }
    }
    if (r != NULL) {
        Py_SETREF(r, Py_NewRef(Py_None)); /* clear_cookie returns None */
    }
done:
    Py_DECREF(expires);
    Py_XDECREF(knames);
    return r;
}

#define CK_FIELDS(X)                                                                   \
    X(cookies_module) X(utc) X(s_slash) X(s_domain) X(s_expires) X(s_path) X(s_max_age) \
    X(s_httponly) X(s_secure) X(s_samesite) X(s_SimpleCookie) X(s_CookieError)         \
    X(s_datetime) X(s_now) X(s_UTC) X(s_timedelta) X(s_format_timestamp) X(kw_days)   \
    X(kw_value_expires) X(int_365)

int
tc_web_cookie_exec(tc_web_state *ws)
{
    tc_web_cookie_state *ck = &ws->h.ck;
#define CK_INTERN(field, text)                                     \
    if ((ck->field = PyUnicode_InternFromString(text)) == NULL) { \
        return -1;                                                 \
    }
    CK_INTERN(s_slash, "/")
    CK_INTERN(s_domain, "domain")
    CK_INTERN(s_expires, "expires")
    CK_INTERN(s_path, "path")
    CK_INTERN(s_max_age, "max-age")
    CK_INTERN(s_httponly, "httponly")
    CK_INTERN(s_secure, "secure")
    CK_INTERN(s_samesite, "samesite")
    CK_INTERN(s_SimpleCookie, "SimpleCookie")
    CK_INTERN(s_CookieError, "CookieError")
    CK_INTERN(s_datetime, "datetime")
    CK_INTERN(s_now, "now")
    CK_INTERN(s_UTC, "UTC")
    CK_INTERN(s_timedelta, "timedelta")
    CK_INTERN(s_format_timestamp, "format_timestamp")
#undef CK_INTERN
    if ((ck->kw_days = Py_BuildValue("(s)", "days")) == NULL ||
        (ck->kw_value_expires = Py_BuildValue("(ss)", "value", "expires")) == NULL ||
        (ck->int_365 = PyLong_FromLong(365)) == NULL) {
        return -1;
    }
    return 0;
}

/* _web_handler_setup's part: http.cookies and datetime.timezone.utc */
int
tc_web_cookie_setup(tc_web_state *ws, PyObject *cfg)
{
    tc_web_cookie_state *ck = &ws->h.ck;
    PyObject *mod = PyDict_GetItemString(cfg, "http.cookies"); /* borrowed */
    PyObject *utc = PyDict_GetItemString(cfg, "timezone.utc"); /* borrowed */
    if (mod == NULL || utc == NULL || !PyModule_Check(mod)) {
        PyErr_SetString(PyExc_KeyError,
                        "_web_handler_setup: http.cookies (a module) and timezone.utc");
        return -1;
    }
    Py_XSETREF(ck->cookies_module, Py_NewRef(mod));
    Py_XSETREF(ck->utc, Py_NewRef(utc));
    return 0;
}

int
tc_web_cookie_traverse(tc_web_state *ws, visitproc visit, void *arg)
{
    tc_web_cookie_state *ck = &ws->h.ck;
#define CK_VISIT(f) Py_VISIT(ck->f);
    CK_FIELDS(CK_VISIT)
#undef CK_VISIT
    return 0;
}

void
tc_web_cookie_clear(tc_web_state *ws)
{
    tc_web_cookie_state *ck = &ws->h.ck;
#define CK_CLEAR(f) Py_CLEAR(ck->f);
    CK_FIELDS(CK_CLEAR)
#undef CK_CLEAR
}
