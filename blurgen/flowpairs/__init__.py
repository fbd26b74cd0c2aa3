"""``blurgen flowpairs``: blurred images from averaged frames, paired with first->last flow.

Video mode: :mod:`~blurgen.flowpairs.video` (sources), :mod:`~blurgen.flowpairs.windows`
(which frames, scene cuts), :mod:`~blurgen.flowpairs.averaging` (linear light). Synth mode:
:mod:`~blurgen.flowpairs.synth` (procedural scenes), :mod:`~blurgen.flowpairs.user_pairs`,
:mod:`~blurgen.flowpairs.interpolate`. Both: :mod:`~blurgen.flowpairs.plan`,
:mod:`~blurgen.flowpairs.samples`, :mod:`~blurgen.flowpairs.pipeline`; docs/flowpairs.md.
"""
