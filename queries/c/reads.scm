; Member accesses: `s->threshold_size`, `t.n`. Every one is captured; the
; extractor (extract/reads.py) reads its position to tell what it does:
; the plain left-hand side of `=` is a write only (writes.scm has it) and is
; dropped, `&s->x` takes the address (a use, not a read), anything else reads
; the member (right-hand side, argument, condition, `return`, compound
; assignment, `++`/`--`, base of another access, called through).

; The pattern has no child pattern: one waiting for the `field:` child would stay
; alive through the whole argument, and a chain `x->a->a->...` of n accesses would
; cost the query n * n steps. The extractor reads the field itself.

(field_expression) @reference.field_access
