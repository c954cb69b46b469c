; Variable declarations, global and local; Python reads their declarators
; (names, pointer levels, function pointers) and keeps their type text.
; Parameters are read from each function definition's declarator
; (definitions.scm): only a definition's own parameters are variables.

(declaration type: (_) @type) @definition.variable
