/*
 * GLib's cleanup macros as chaintrace's macro expander needs them: QEMU uses
 * them but does not define them (they are in GLib's gmacros.h). What they
 * make gcc call: `g_autoptr(T) x` calls glib_autoptr_cleanup_T(&x) when x
 * goes out of scope, at the declaration's line; G_DEFINE_AUTOPTR_CLEANUP_FUNC(T, f)
 * defines that function (and its clear, list, slist and queue siblings) at
 * its use. Written for chaintrace from GLib's documented behaviour; only the
 * calls matter, the types are approximate. Seen by every file, after the
 * tree's own definitions (graph/scope.py).
 */
#define _GLIB_CLEANUP(func) __attribute__((cleanup(func)))
#define g_autoptr(TypeName) _GLIB_CLEANUP(glib_autoptr_cleanup_##TypeName) TypeName *
#define g_autolist(TypeName) _GLIB_CLEANUP(glib_listautoptr_cleanup_##TypeName) GList *
#define g_autoslist(TypeName) _GLIB_CLEANUP(glib_slistautoptr_cleanup_##TypeName) GSList *
#define g_autoqueue(TypeName) _GLIB_CLEANUP(glib_queueautoptr_cleanup_##TypeName) GQueue *
#define g_auto(TypeName) _GLIB_CLEANUP(glib_auto_cleanup_##TypeName) TypeName
#define G_DEFINE_AUTOPTR_CLEANUP_FUNC(TypeName, func) \
    static inline void glib_autoptr_clear_##TypeName(TypeName *_ptr) { if (_ptr) { (func)(_ptr); } } \
    static inline void glib_autoptr_cleanup_##TypeName(TypeName **_ptr) { glib_autoptr_clear_##TypeName(*_ptr); } \
    static inline void glib_listautoptr_cleanup_##TypeName(GList **_l) { g_list_free_full(*_l, (GDestroyNotify)func); } \
    static inline void glib_slistautoptr_cleanup_##TypeName(GSList **_l) { g_slist_free_full(*_l, (GDestroyNotify)func); } \
    static inline void glib_queueautoptr_cleanup_##TypeName(GQueue **_q) { if (*_q) g_queue_free_full(*_q, (GDestroyNotify)func); }
#define G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TypeName, func) \
    static inline void glib_auto_cleanup_##TypeName(TypeName *_ptr) { (func)(_ptr); }
#define G_DEFINE_AUTO_CLEANUP_FREE_FUNC(TypeName, func, none) \
    static inline void glib_auto_cleanup_##TypeName(TypeName *_ptr) { if (*_ptr != none) { (func)(*_ptr); } }
