; Writes to struct fields: `s->threshold_size = ...`, `p->n += 1`, `x.y++`.

(assignment_expression
  left: (field_expression field: (field_identifier) @name)) @reference.field_write

(update_expression
  argument: (field_expression field: (field_identifier) @name)) @reference.field_write
