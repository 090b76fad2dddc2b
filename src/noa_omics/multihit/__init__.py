"""Work in progress: replaced by the real implementation (TEMPORARY STUB)."""

def multihit(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('multihit is not implemented yet')

def retrieval_model(*args, **kwargs):  # TEMPORARY STUB
    raise NotImplementedError('retrieval_model is not implemented yet')
