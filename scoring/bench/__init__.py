"""The scorer checking itself: the baseline zoo, the sanity rows, the CIFAR rehearsal."""
