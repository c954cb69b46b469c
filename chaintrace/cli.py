def main(argv=None):
    import importlib.resources as r
    print((r.files("chaintrace.queries") / "c" / "probe.scm").read_text())
    return 0
