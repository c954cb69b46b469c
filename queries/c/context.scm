; What surrounds a site: loops, preprocessor conditionals, early-return
; guards. Python turns their byte ranges into each site's Context.

(for_statement) @context.loop
(while_statement) @context.loop
(do_statement) @context.loop

(preproc_if) @context.conditional
(preproc_ifdef) @context.conditional
(preproc_elif) @context.conditional
(preproc_elifdef) @context.conditional

(compound_statement
  (if_statement consequence: [(return_statement) (compound_statement)]) @context.guard)
