"""Training, evaluation and export of the face classifiers (the optional ``train`` extra).

Everything that imports torch lives here, and is imported only by the train/eval/export commands.
"""
