"""Feedback: named scores (``thumbs``, ``rating``, ``resolved``...) given to a session or
to one of its messages, each kept under an id the client may choose, so giving it again
updates it. promptmodel's score routes (``promptmodel_compat``) store theirs here too."""
