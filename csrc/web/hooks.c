/* web component: which of upstream's methods a class has (the flags the
 * request and routing code decide by), and the life cycle of the state
 * request.c and routing.c share (web.h, "The request and routing").
 *
 * A class's flags are computed with _PyType_Lookup (the attribute along its
 * MRO, as a method call would find it) and compared by identity with the
 * functions upstream's modules defined, captured at import
 * (_web_request_setup, _web_routing_setup, _web_app_setup).  They are kept
 * with the class's tp_version_tag: CPython sets it to 0 whenever the class
 * or one of its bases is given or loses an attribute (and gives it a new,
 * never reused, number at the next lookup), so an entry is valid exactly
 * while the tag is the one recorded.  3.11 to 3.13 alike.
 */
#include "common.h"
#include "state.h"
#include "web/web.h"

/* ------------------------------------------------------------ per-class flags */

static unsigned int
compute_flags(tc_web_route_state *rt, PyTypeObject *t)
{
    struct {
        unsigned int bit;
        PyObject *name;
        PyObject *orig;
    } checks[] = {
        {TC_WEB_F_REQ_INIT, rt->n___init__, rt->request_init},
        {TC_WEB_F_APP_FIND, rt->n_find_handler, rt->app_find},
        {TC_WEB_F_APP_GHD, rt->n_get_handler_delegate, rt->app_ghd},
        {TC_WEB_F_RR_FIND, rt->n_find_handler, rt->rr_find},
        {TC_WEB_F_RR_GTD, rt->n_get_target_delegate, rt->rr_gtd},
        {TC_WEB_F_AR_GTD, rt->n_get_target_delegate, rt->ar_gtd},
        {TC_WEB_F_PM_MATCH, rt->n_match, rt->pm_match},
        {TC_WEB_F_AM_MATCH, rt->n_match, rt->am_match},
        {TC_WEB_F_HD_INIT, rt->n___init__, rt->hd_init},
    };
    unsigned int flags = 0;
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (checks[i].orig != NULL && _PyType_Lookup(t, checks[i].name) == checks[i].orig) {
            flags |= checks[i].bit;
        }
    }
    PyObject *rd_names[5] = {rt->n___init__, rt->n_headers_received, rt->n_data_received,
                             rt->n_finish, rt->n_on_connection_close};
    int rd = 1;
    for (int i = 0; i < 5; i++) {
        rd = rd && rt->rd_meth[i] != NULL;
    }
    for (int i = 0; i < 5 && rd; i++) {
        rd = _PyType_Lookup(t, rd_names[i]) == rt->rd_meth[i];
    }
    if (rd) {
        flags |= TC_WEB_F_RD;
    }
    return flags;
}

unsigned int
tc_web_type_flags(tc_web_state *ws, PyTypeObject *t)
{
    tc_web_route_state *rt = &ws->rt;
    tc_web_tcache *slot = NULL;
    for (int i = 0; i < TC_WEB_TCACHE; i++) {
        if (rt->tcache[i].type == t) {
            if (t->tp_version_tag != 0 && t->tp_version_tag == rt->tcache[i].tag) {
                return rt->tcache[i].flags;
            }
            slot = &rt->tcache[i];
            break;
        }
    }
    /* _PyType_Lookup gives t a version tag if it has none; a type whose
     * tag is 0 afterwards (CPython ran out of tags for it) is looked up
     * again at every call */
    unsigned int flags = compute_flags(rt, t);
    unsigned int tag = t->tp_version_tag;
    if (tag == 0) {
        return flags;
    }
    if (slot == NULL) {
        slot = &rt->tcache[rt->tcache_next];
        rt->tcache_next = (rt->tcache_next + 1) % TC_WEB_TCACHE;
        Py_XSETREF(slot->type, (PyTypeObject *)Py_NewRef(t));
    }
    slot->tag = tag;
    slot->flags = flags;
    return flags;
}

PyObject *
tc_web_upstream_function(PyObject *f, PyObject *module, const char *qualname)
{
    PyObject *mname = NULL, *mfile = NULL, *fmod = NULL, *fqual = NULL, *code = NULL;
    PyObject *cfile = NULL, *res = NULL;
    if (f == NULL || !PyFunction_Check(f) || !PyModule_Check(module)) {
        return NULL;
    }
    mname = PyObject_GetAttrString(module, "__name__");
    mfile = PyObject_GetAttrString(module, "__file__");
    fmod = PyObject_GetAttrString(f, "__module__");
    fqual = PyObject_GetAttrString(f, "__qualname__");
    code = PyObject_GetAttrString(f, "__code__");
    cfile = code != NULL ? PyObject_GetAttrString(code, "co_filename") : NULL;
    if (cfile != NULL && PyUnicode_Check(fqual) &&
        PyUnicode_CompareWithASCIIString(fqual, qualname) == 0 &&
        PyObject_RichCompareBool(fmod, mname, Py_EQ) == 1 &&
        PyObject_RichCompareBool(cfile, mfile, Py_EQ) == 1) {
        res = f;
    }
    PyErr_Clear();
    Py_XDECREF(mname);
    Py_XDECREF(mfile);
    Py_XDECREF(fmod);
    Py_XDECREF(fqual);
    Py_XDECREF(code);
    Py_XDECREF(cfile);
    return res;
}

int
tc_web_set_attrs(PyObject *self, PyObject *const *names, PyObject *const *values, Py_ssize_t n)
{
    /* (Setting __dict__ at once to a filled-in copy of a template dict was
     * tried: no fewer instructions per attribute on 3.11, and one more
     * GC-tracked object per instance, which the collector then pays for.) */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyObject_SetAttr(self, names[i], values[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

int
tc_web_route_exec(PyObject *module, struct tc_state *st)
{
    tc_web_state *ws = st->web;
    tc_web_route_state *rt = &ws->rt;
#define TC_WEB_INTERN(name)                                               \
    if ((rt->n_##name = PyUnicode_InternFromString(#name)) == NULL) {     \
        return -1;                                                        \
    }
    TC_WEB_ROUTE_NAMES(TC_WEB_INTERN)
#undef TC_WEB_INTERN
    if ((rt->empty_tuple = PyTuple_New(0)) == NULL ||
        (rt->s_http10 = PyUnicode_InternFromString("HTTP/1.0")) == NULL ||
        (rt->s_localhost = PyUnicode_InternFromString("127.0.0.1")) == NULL ||
        (rt->s_Host = PyUnicode_InternFromString("Host")) == NULL ||
        (rt->kw_request = Py_BuildValue("(ssss)", "connection", "server_connection",
                                        "start_line", "headers")) == NULL) {
        return -1;
    }
    if (tc_web_request_exec(module) < 0) {
        return -1;
    }
    return tc_web_routing_exec(module, ws);
}

/* X-macro helpers over the objects tc_web_route_state holds. */
#define TC_WEB_ROUTE_OBJECTS(X)                                                         \
    X(RoutingDelegateType) X(MethodType) X(hu_dict) X(Request) X(request_init)           \
    X(parse_qs_bytes) X(split_host_and_port) X(RequestStartLine) X(ServerConnDelegate)   \
    X(routing_dict) X(Router) X(RoutingDelegate) X(rr_find) X(rr_gtd) X(pm_match)        \
    X(am_match) X(unquote_or_none) X(PatternType) X(partial) X(web_dict)                 \
    X(RequestHandler) X(HandlerDelegate) X(app_find) X(app_ghd) X(ar_gtd) X(hd_init) X(hd_hr) X(hd_finish) \
    X(has_srb) X(httpserver_dict) X(hs_start_request) X(sr_forwarder) X(kw_request) X(empty_tuple) X(s_http10) X(s_localhost) X(s_Host)

int
tc_web_route_traverse(tc_web_state *ws, visitproc visit, void *arg)
{
    tc_web_route_state *rt = &ws->rt;
#define TC_WEB_VISIT(f) Py_VISIT(rt->f);
    TC_WEB_ROUTE_OBJECTS(TC_WEB_VISIT)
#undef TC_WEB_VISIT
    for (int i = 0; i < 5; i++) {
        Py_VISIT(rt->rd_meth[i]);
    }
    for (int i = 0; i < TC_WEB_TCACHE; i++) {
        Py_VISIT(rt->tcache[i].type);
    }
    for (int i = 0; i < TC_WEB_PCACHE; i++) {
        Py_VISIT(rt->pcache[i].regex);
        Py_VISIT(rt->pcache[i].literal);
    }
    return 0;
}

void
tc_web_route_clear(tc_web_state *ws)
{
    tc_web_route_state *rt = &ws->rt;
#define TC_WEB_CLEAR(f) Py_CLEAR(rt->f);
    TC_WEB_ROUTE_OBJECTS(TC_WEB_CLEAR)
#undef TC_WEB_CLEAR
#define TC_WEB_CLEAR_NAME(name) Py_CLEAR(rt->n_##name);
    TC_WEB_ROUTE_NAMES(TC_WEB_CLEAR_NAME)
#undef TC_WEB_CLEAR_NAME
    for (int i = 0; i < 5; i++) {
        Py_CLEAR(rt->rd_meth[i]);
    }
    for (int i = 0; i < TC_WEB_TCACHE; i++) {
        Py_CLEAR(rt->tcache[i].type);
    }
    for (int i = 0; i < TC_WEB_PCACHE; i++) {
        Py_CLEAR(rt->pcache[i].regex);
        Py_CLEAR(rt->pcache[i].literal);
    }
}
