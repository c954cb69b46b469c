; What surrounds a site: loops, preprocessor conditionals, early-return
; guards. Python turns their byte ranges into each site's Context.

(for_statement) @context.loop
(while_statement) @context.loop
(do_statement) @context.loop

(preproc_if) @context.conditional
(preproc_ifdef) @context.conditional
(preproc_elif) @context.conditional
(preproc_elifdef) @context.conditional

; An early return is an `if` directly in a block: Python checks the parent
; (a pattern naming the block kept a match in progress per open block, which
; made 50,000 nested blocks take minutes).
(if_statement consequence: [(return_statement) (compound_statement)]) @context.guard
