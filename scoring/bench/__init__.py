"""The scorer checking itself: the baseline zoo, the sanity rows, the CIFAR rehearsal.

- ``zoo``: ``python -m scoring benchmark``, every baseline and the sanity rows into one leaderboard;
- ``sanity``: three submissions whose scores anyone can predict (identity, noise, retrain);
- ``rehearsal``: ``python -m scoring rehearse``, a CIFAR-10 challenge on synthetic data, one verdict.
"""
