; Definitions, after tree-sitter's tags conventions: the construct is
; @definition.KIND and its name is @name.

(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.function

; A name made by a macro: `void HELPER(add)(int a)`, `static void glue(fill_, NAME)(int x)`. The name is
; the macro's use (`HELPER(add)`); the graph expands it (graph/macro_functions.py).
(function_definition
  declarator: [
    (function_declarator declarator: (function_declarator declarator: (identifier)) @name)
    (pointer_declarator declarator: (function_declarator declarator: (function_declarator declarator: (identifier)) @name))
  ]) @definition.function

(declaration
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))
    (pointer_declarator declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.prototype

(struct_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct
(union_specifier name: (type_identifier) @name body: (field_declaration_list)) @definition.struct

(type_definition declarator: (_) @name) @definition.typedef

(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro
