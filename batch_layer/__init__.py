"""The batch layer: nightly exact recompute of one day from the raw archive, written as a
versioned result (``job``) that serving uses once promoted (``promotion``)."""
