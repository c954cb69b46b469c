/* Multiboot (v1) entry of the bench guest: QEMU's -kernel loads it in 32-bit
 * protected mode, paging off, with the multiboot info pointer in %ebx. */
        .section .text
        .align 4
multiboot_header:
        .long 0x1BADB002                /* magic */
        .long 0x00000000                /* flags: nothing asked of the loader */
        .long -(0x1BADB002 + 0x00000000) /* checksum */

        .globl _start
_start:
        cli
        movl $stack_top, %esp
        pushl %ebx                      /* struct multiboot_info * */
        call guest_main
1:      hlt
        jmp 1b

        .section .bss
        .align 16
stack_bottom:
        .skip 16384
stack_top:
	.section .note.GNU-stack,"",@progbits
