; Variable and parameter declarations; Python reads their declarators
; (names, pointer levels, function pointers) and keeps their type text.

(parameter_declaration type: (_) @type) @definition.parameter

(declaration type: (_) @type) @definition.variable
