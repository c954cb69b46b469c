; Identifiers used as values (not called): candidates for address-taken
; functions. Whether a name is a function is decided against the whole tree.
;
; Identifier arguments of calls (`qemu_thread_create(..., migration_thread,
; ...)`) are read by Python from each call's argument list (calls.scm), which
; it walks anyway: a pattern per argument would cost a capture per argument.

; Initializers are captured whole, and the extractor (extract/references.py)
; picks their values `name`, `(T)name` and `&name`: a child pattern inside an
; initializer list or pair stays alive through the whole of its subtree, and n
; nested initializers would cost the query n * n steps.

(initializer_pair) @reference.initializer_pair

(initializer_list) @reference.initializer_list

(assignment_expression
  right: [
    (identifier) @name
    (cast_expression value: (identifier) @name)
    (pointer_expression argument: (identifier) @name)
  ]) @reference.assignment

(init_declarator
  value: [
    (identifier) @name
    (cast_expression value: (identifier) @name)
    (pointer_expression argument: (identifier) @name)
  ]) @reference.assignment

; Either arm of a conditional on the right: `Handler h = flag ? a : &c;`.

(assignment_expression
  right: (conditional_expression
    consequence: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.assignment

(assignment_expression
  right: (conditional_expression
    alternative: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.assignment

(init_declarator
  value: (conditional_expression
    consequence: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.assignment

(init_declarator
  value: (conditional_expression
    alternative: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.assignment

; A function returned (`return info->get ? field_prop_get : NULL;`): what a call
; of the function it is returned from yields.

(return_statement [
    (identifier) @name
    (cast_expression value: (identifier) @name)
    (pointer_expression argument: (identifier) @name)
  ]) @reference.return

(return_statement
  (conditional_expression
    consequence: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.return

(return_statement
  (conditional_expression
    alternative: [
      (identifier) @name
      (cast_expression value: (identifier) @name)
      (pointer_expression argument: (identifier) @name)
    ])) @reference.return

; An element of an array copied whole (`buffer_is_zero_accel = accel_table[i];`,
; `Fn f = table[i];`): the variable holds what the array holds (a copy, followed
; in graph/flowfacts when the array is a variable, never an address taken).

(assignment_expression
  right: (subscript_expression argument: (identifier) @name)) @reference.assignment

(init_declarator
  value: (subscript_expression argument: (identifier) @name)) @reference.assignment

; A call of a plain name as a declaration's whole value (`static X86OpEntry pause =
; X86_OP_ENTRY0(PAUSE);`): when the name is a macro whose expansion is a brace
; initializer, it writes the declared struct's members (graph/macro_functions),
; as a macro used as an initializer's element does.

(init_declarator
  value: (call_expression function: (identifier) @name)) @reference.declared_call
