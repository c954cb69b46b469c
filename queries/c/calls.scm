; Call sites. Python decides whether the callee is a plain name, a local
; or parameter, a struct field (`se->ops->save_live_iterate`) or another
; expression.

(call_expression
  function: (_) @name
  arguments: (argument_list) @arguments) @reference.call
