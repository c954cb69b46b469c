; Identifiers used as values (not called): candidates for address-taken
; functions. Whether a name is a function is decided against the whole tree.
;
; Identifier arguments of calls (`qemu_thread_create(..., migration_thread,
; ...)`) are read by Python from each call's argument list (calls.scm), which
; it walks anyway: a pattern per argument would cost a capture per argument.

(initializer_pair
  designator: (field_designator (field_identifier) @field)
  value: [
    (identifier) @name
    (cast_expression value: (identifier) @name)
    (pointer_expression argument: (identifier) @name)
  ]) @reference.initializer

(initializer_list
  [
    (identifier) @name
    (cast_expression value: (identifier) @name)
    (pointer_expression argument: (identifier) @name)
  ]) @reference.initializer

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
