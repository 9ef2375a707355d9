// Patched copy of FerretDB v1.24.2 internal/handler/msg_update.go, compiled in from a vendored
// build directory (see src/db/local-server.ts). One change, marked "cronjobs patch": each update
// statement's iterator is closed when that statement is done. Upstream defers every statement's
// close to the end of the command, so an update command of N statements held N pooled PostgreSQL
// connections at once (plus one for each write): a bulkWrite of more updates than the pool has
// connections (50 by default) waited for ever, and every other client of FerretDB with it.

// Copyright 2021 FerretDB Inc.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package handler

import (
	"context"
	"fmt"

	"github.com/FerretDB/wire"

	"github.com/FerretDB/FerretDB/internal/backends"
	"github.com/FerretDB/FerretDB/internal/handler/common"
	"github.com/FerretDB/FerretDB/internal/handler/handlererrors"
	"github.com/FerretDB/FerretDB/internal/types"
	"github.com/FerretDB/FerretDB/internal/util/iterator"
	"github.com/FerretDB/FerretDB/internal/util/lazyerrors"
	"github.com/FerretDB/FerretDB/internal/util/must"
)

// MsgUpdate implements `update` command.
//
// The passed context is canceled when the client connection is closed.
func (h *Handler) MsgUpdate(connCtx context.Context, msg *wire.OpMsg) (*wire.OpMsg, error) {
	document, err := opMsgDocument(msg)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	params, err := common.GetUpdateParams(document, h.L)
	if err != nil {
		return nil, lazyerrors.Error(err)
	}

	// TODO https://github.com/FerretDB/FerretDB/issues/2612
	_ = params.Ordered

	matched, modified, upserted, err := h.updateDocument(connCtx, params)
	if err != nil {
		return nil, handleUpdateError(params.DB, params.Collection, "update", err)
	}

	res := must.NotFail(types.NewDocument(
		"n", matched,
	))

	if upserted.Len() != 0 {
		res.Set("upserted", upserted)
	}

	res.Set("nModified", modified)
	res.Set("ok", float64(1))

	return documentOpMsg(
		res,
	)
}

// updateDocument iterate through all documents in collection and update them.
func (h *Handler) updateDocument(ctx context.Context, params *common.UpdateParams) (int32, int32, *types.Array, error) {
	var matched, modified int32
	var upserted types.Array

	db, err := h.b.Database(params.DB)
	if err != nil {
		if backends.ErrorCodeIs(err, backends.ErrorCodeDatabaseNameIsInvalid) {
			msg := fmt.Sprintf("Invalid namespace specified '%s.%s'", params.DB, params.Collection)
			return 0, 0, nil, handlererrors.NewCommandErrorMsgWithArgument(handlererrors.ErrInvalidNamespace, msg, "update")
		}

		return 0, 0, nil, lazyerrors.Error(err)
	}

	err = db.CreateCollection(ctx, &backends.CreateCollectionParams{Name: params.Collection})

	switch {
	case err == nil:
		// nothing
	case backends.ErrorCodeIs(err, backends.ErrorCodeCollectionAlreadyExists):
		// nothing
	case backends.ErrorCodeIs(err, backends.ErrorCodeCollectionNameIsInvalid):
		msg := fmt.Sprintf("Invalid collection name: %s", params.Collection)
		return 0, 0, nil, handlererrors.NewCommandErrorMsgWithArgument(handlererrors.ErrInvalidNamespace, msg, "insert")
	default:
		return 0, 0, nil, lazyerrors.Error(err)
	}

	for _, u := range params.Updates {
		// cronjobs patch: each statement in a function of its own, so its iterator (and the
		// pooled PostgreSQL connection it holds) is closed when the statement is done, not when
		// the whole command is: a bulk of N updates held N connections, and one of more than
		// the pool's size waited for ever, with every other client of this FerretDB.
		var stop bool
		var ret error

		func() {
			c, err := db.Collection(params.Collection)
			if err != nil {
				if backends.ErrorCodeIs(err, backends.ErrorCodeCollectionNameIsInvalid) {
					msg := fmt.Sprintf("Invalid collection name: %s", params.Collection)
					stop, ret = true, handlererrors.NewCommandErrorMsgWithArgument(handlererrors.ErrInvalidNamespace, msg, "insert")

					return
				}

				stop, ret = true, lazyerrors.Error(err)

				return
			}

			var qp backends.QueryParams
			if !h.DisablePushdown {
				qp.Filter = u.Filter
			}

			res, err := c.Query(ctx, &qp)
			if err != nil {
				stop, ret = true, lazyerrors.Error(err)
				return
			}

			closer := iterator.NewMultiCloser()
			defer closer.Close()

			closer.Add(res.Iter)

			iter := common.FilterIterator(res.Iter, closer, u.Filter)

			if !u.Multi {
				iter = common.LimitIterator(iter, closer, 1)
			}

			result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
			if err != nil {
				stop, ret = true, lazyerrors.Error(err)
				return
			}

			matched += result.Matched.Count
			modified += result.Modified.Count

			if result.Upserted.Doc != nil {
				doc := result.Upserted.Doc
				upserted.Append(must.NotFail(types.NewDocument(
					"index", int32(upserted.Len()),
					"_id", must.NotFail(doc.Get("_id")),
				)))

				// in case of upsert, MongoDB sets the matched count to 1
				matched++
			}
		}()

		if stop {
			return 0, 0, nil, ret
		}
	}

	return matched, modified, &upserted, nil
}
