"""The reconcile layer: day D's speed table against its batch version and Kafka's offsets
(``viewcount reconcile``), every divergent cell classified by a cause proven from the
events behind it (``causes``), costed with the video catalog (``billing``,
``viewcount catalog``), and published as a summary (JSON: the public contract) and an
HTML report (``pipeline``)."""
