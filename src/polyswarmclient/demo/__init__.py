"""``microengine --devnet`` without the command line: the whole marketplace in one process.

* :mod:`.marketplace` plans and runs it (devnet, ambassador, arbiter, engine) and returns the summary;
* :mod:`.observer` reads the devnet's public event stream into one view per bounty;
* :mod:`.scoring` judges the engine's verdicts and adds up what they earned (pure);
* :mod:`.timing` sets the bounty lifetime and windows in blocks (pure);
* :mod:`.reports` holds the typed values a run reports as it goes.

It needs the devnet extra; nothing here imports click or the CLI, which renders the reports.
"""
