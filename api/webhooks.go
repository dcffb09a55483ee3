package api

import (
	"errors"
	"net/http"

	"github.com/postflow/postflow/webhooks"
)

// webhookError maps the webhooks domain's errors to answers: the one place
// their statuses are chosen.
func webhookError(err error) error {
	var inv *webhooks.InvalidError
	switch {
	case errors.As(err, &inv):
		return Unprocessable(inv.Code, inv.Message)
	case errors.Is(err, webhooks.ErrNotFound):
		return NotFound("webhook_not_found", "No such webhook or delivery.")
	case errors.Is(err, webhooks.ErrDisabled):
		return Conflict("webhook_disabled", "The webhook is disabled; enable it (PATCH with \"enabled\": true) first.")
	case errors.Is(err, webhooks.ErrCreateContended):
		return Conflict("webhook_create_contended", "Other webhooks were created at the same moment and took the last places; this one was not kept, though the organization is under its limit now. Try again.")
	case errors.Is(err, webhooks.ErrSecretRotated):
		return Conflict("secret_rotated", "Another rotation of this webhook's secret was stored while this one ran; this one's secret was not kept. Rotate again for a secret of your own.")
	}
	return err
}

// webhookWithSecret is an endpoint with its signing secret: the answer of
// a create and of a rotation, the only ones to show it.
type webhookWithSecret struct {
	*webhooks.Endpoint
	Secret string `json:"secret"`
}

func (s *server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var in webhooks.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	e, secret, err := s.webhooks.Create(r.Context(), identityOf(r.Context()).OrgID, in)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, webhookWithSecret{Endpoint: e, Secret: secret})
}

func (s *server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := s.webhooks.List(r.Context(), identityOf(r.Context()).OrgID)
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": list})
}

func (s *server) getWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	e, err := s.webhooks.Get(r.Context(), identityOf(r.Context()).OrgID, id)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	var in webhooks.Input
	if err := decodeJSON(r, &in); err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	e, err := s.webhooks.Update(r.Context(), identityOf(r.Context()).OrgID, id, in)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	if err := s.webhooks.Delete(r.Context(), identityOf(r.Context()).OrgID, id); err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) rotateWebhookSecret(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	e, secret, err := s.webhooks.RotateSecret(r.Context(), identityOf(r.Context()).OrgID, id)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, webhookWithSecret{Endpoint: e, Secret: secret})
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	limit, before, err := pageQuery(r.URL.Query(), "a delivery")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	list, err := s.webhooks.Deliveries(r.Context(), identityOf(r.Context()).OrgID, id, limit, before)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	writeJSON(w, http.StatusOK, page("deliveries", list, len(list), limit, func() string { return list[len(list)-1].ID }))
}

func (s *server) redeliver(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	deliveryID, err := pathID(r, "deliveryId")
	if err != nil {
		writeError(w, r, s.logger, err)
		return
	}
	wf, err := s.webhooks.Redeliver(r.Context(), identityOf(r.Context()).OrgID, id, deliveryID)
	if err != nil {
		writeError(w, r, s.logger, webhookError(err))
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"workflowId": wf})
}
