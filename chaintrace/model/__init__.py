"""An executable model of QEMU's precopy migration loop, with the source facts it mirrors declared as anchors."""
